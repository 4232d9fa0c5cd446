"""Every object-store behaviour, against both implementations: the local folder and the MinIO
SDK talking to a real S3-protocol server process (moto) over HTTP."""

from __future__ import annotations

import hashlib
import io
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import free_port
from minio.error import S3Error

from storage.object_local import LocalStore
from storage.object_s3 import S3Store
from storage.objects import (
    ObjectLocked,
    ObjectMissing,
    ObjectStore,
    ObjectTooLarge,
    StoreUnavailable,
    bucket_for,
    key_for,
)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return S3Store(request.getfixturevalue("moto_endpoint"), "test", "test")


@pytest.fixture
def prefix() -> str:
    """Buckets unique to the test: the moto server is shared by the whole session."""
    return "t" + uuid.uuid4().hex[:10]


def _put(store: ObjectStore, bucket: str, data: bytes, **kw: object) -> object:
    return store.put(bucket, io.BytesIO(data), "image/jpeg", max_bytes=1 << 20, **kw)  # type: ignore[arg-type]


class OneWay(io.RawIOBase):
    """A stream that cannot seek, like a request body."""

    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self.buf.read(min(len(b), 1000))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_put_get_stat_roundtrip(store: ObjectStore, prefix: str) -> None:
    bucket = bucket_for("scans", "370100", prefix=prefix)
    store.ensure_bucket(bucket)
    data = b"\xff\xd8\xff" + b"page" * 1000
    info = store.put(bucket, io.BytesIO(data), "image/jpeg", max_bytes=1 << 20)
    sha = hashlib.sha256(data).hexdigest()
    assert (info.bucket, info.key, info.sha256, info.size) == (bucket, key_for(sha), sha, len(data))
    assert b"".join(store.get(bucket, info.key)) == data
    st = store.stat(bucket, info.key)
    assert st is not None and st.size == len(data) and st.content_type == "image/jpeg"
    assert st.created_at is not None and abs((datetime.now(UTC) - st.created_at).total_seconds()) < 60
    missing = key_for("0" * 64)
    assert store.stat(bucket, missing) is None
    with pytest.raises(ObjectMissing):
        b"".join(store.get(bucket, missing))


def test_same_bytes_are_stored_once_and_unseekable_streams_work(store: ObjectStore, prefix: str) -> None:
    bucket = f"{prefix}-scans"
    store.ensure_bucket(bucket)
    data = b"same page " * 5000
    a = store.put(bucket, io.BytesIO(data), "application/pdf", max_bytes=1 << 20)
    b = store.put(bucket, OneWay(data), "application/pdf", max_bytes=1 << 20)  # type: ignore[arg-type]
    assert a.key == b.key
    assert [o.key for o in store.list(bucket)] == [a.key]


def test_oversize_stream_stores_nothing(store: ObjectStore, prefix: str) -> None:
    bucket = f"{prefix}-scans"
    store.ensure_bucket(bucket)
    with pytest.raises(ObjectTooLarge):
        store.put(bucket, io.BytesIO(b"x" * 2001), "image/png", max_bytes=2000)
    with pytest.raises(ObjectTooLarge):
        store.put(bucket, OneWay(b"x" * 2001), "image/png", max_bytes=2000)  # type: ignore[arg-type]
    assert list(store.list(bucket)) == []


def test_download_is_presigned_for_s3_and_streamed_for_local(store: ObjectStore, prefix: str) -> None:
    bucket = f"{prefix}-scans"
    store.ensure_bucket(bucket)
    info = _put(store, bucket, b"scan bytes")
    url = store.presigned_url(bucket, info.key, seconds=60)  # type: ignore[attr-defined]
    if isinstance(store, LocalStore):
        assert url is None  # the API streams it
    else:
        assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
        with urllib.request.urlopen(url, timeout=10) as r:  # a real HTTP fetch
            assert r.read() == b"scan bytes"


def test_copy_between_region_buckets(store: ObjectStore, prefix: str) -> None:
    jinan, qingdao = bucket_for("scans", "370100", prefix=prefix), bucket_for("scans", "370211", prefix=prefix)
    assert (jinan, qingdao) == (f"{prefix}-scans-370100", f"{prefix}-scans-370211")
    for b in (jinan, qingdao):
        store.ensure_bucket(b)
    info = _put(store, jinan, b"handed-off page")
    copied = store.copy(jinan, info.key, qingdao)  # type: ignore[attr-defined]
    assert copied.sha256 == info.sha256 and copied.size == info.size  # type: ignore[attr-defined]
    assert b"".join(store.get(qingdao, info.key)) == b"handed-off page"  # type: ignore[attr-defined]
    assert {jinan, qingdao} <= set(store.buckets())
    with pytest.raises(ObjectMissing):
        store.copy(jinan, key_for("1" * 64), qingdao)


def test_delete_removes_unretained_objects(store: ObjectStore, prefix: str) -> None:
    bucket = f"{prefix}-scans"
    store.ensure_bucket(bucket)
    info = _put(store, bucket, b"withdrawn and swept")
    store.delete(bucket, info.key)  # type: ignore[attr-defined]
    assert store.stat(bucket, info.key) is None  # type: ignore[attr-defined]
    store.delete(bucket, info.key)  # type: ignore[attr-defined]  (idempotent)


def test_retained_evidence_cannot_be_deleted_or_overwritten(store: ObjectStore, prefix: str) -> None:
    bucket = bucket_for("evidence", "370211", prefix=prefix)
    store.ensure_bucket(bucket, evidence=True)
    data = b"%PDF-1.7 certificate"
    info = store.put(bucket, io.BytesIO(data), "application/pdf", max_bytes=1 << 20, retain_days=30)
    st = store.stat(bucket, info.key)
    assert st is not None and st.retain_until is not None
    assert 29 <= (st.retain_until - datetime.now(UTC)).days <= 30
    with pytest.raises(ObjectLocked):
        store.delete(bucket, info.key)
    again = store.put(bucket, io.BytesIO(data), "application/pdf", max_bytes=1 << 20, retain_days=30)
    assert again.key == info.key and again.version_id == st.version_id  # no second version
    assert b"".join(store.get(bucket, info.key)) == data
    if isinstance(store, S3Store):
        assert st.version_id  # versioned bucket
        # Below the product too: the server refuses to delete the locked version …
        with pytest.raises(S3Error) as err:
            store.client.remove_object(bucket_name=bucket, object_name=info.key, version_id=st.version_id)
        assert err.value.code == "AccessDenied"
        # … and a raw overwrite only adds a version: the retained one stays readable.
        store.client.put_object(bucket_name=bucket, object_name=info.key, data=io.BytesIO(b"forged"),
                                length=6, metadata={"x-amz-sdk-checksum-algorithm": "SHA256"})
        old = store.client.get_object(bucket_name=bucket, object_name=info.key, version_id=st.version_id)
        assert old.read() == data
    else:
        path = Path(store.root, bucket, info.key)  # type: ignore[attr-defined]
        assert path.stat().st_mode & 0o222 == 0  # read-only on disk


def test_legal_hold_blocks_delete_until_released(store: ObjectStore, prefix: str) -> None:
    bucket = f"{prefix}-evidence"
    store.ensure_bucket(bucket, evidence=True)
    info = _put(store, bucket, b"recording under hold")
    store.set_legal_hold(bucket, info.key, True)  # type: ignore[attr-defined]
    assert store.stat(bucket, info.key).legal_hold  # type: ignore[attr-defined,union-attr]
    with pytest.raises(ObjectLocked):
        store.delete(bucket, info.key)  # type: ignore[attr-defined]
    store.set_legal_hold(bucket, info.key, False)  # type: ignore[attr-defined]
    store.delete(bucket, info.key)  # type: ignore[attr-defined]
    assert store.stat(bucket, info.key) is None  # type: ignore[attr-defined]


def test_unreachable_s3_server_is_store_unavailable() -> None:
    down = S3Store(f"127.0.0.1:{free_port()}", "test", "test", connect_timeout=1)
    with pytest.raises(StoreUnavailable):
        down.ensure_bucket("tongban-scans")
    with pytest.raises(StoreUnavailable):
        down.put("tongban-scans", io.BytesIO(b"x"), "image/png", max_bytes=10)
    with pytest.raises(StoreUnavailable):
        down.stat("tongban-scans", key_for("a" * 64))


def test_local_store_never_takes_a_key_as_a_path(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    store.ensure_bucket("tongban-scans")
    (tmp_path / "secret").write_text("x")
    assert store.stat("tongban-scans", "../../secret") is None
    with pytest.raises(ObjectMissing):
        store.get("tongban-scans", "sha256/../../../secret")


def test_a_digest_the_caller_already_has_is_used_and_a_wrong_one_stores_nothing(
        store: ObjectStore, prefix: str) -> None:
    """The upload route hashes a body as it arrives and hands the digest on: the store does not
    read the bytes a second time (S3) or checks it against what it writes (folder)."""
    b = f"{prefix}-scans"
    store.ensure_bucket(b)
    data = b"\xff\xd8\xff" + uuid.uuid4().bytes * 1000
    sha = hashlib.sha256(data).hexdigest()
    info = _put(store, b, data, sha256=sha)
    assert info.key == key_for(sha) and info.sha256 == sha and info.size == len(data)  # type: ignore[attr-defined]
    assert b"".join(store.get(b, info.key)) == data  # type: ignore[attr-defined]
    with pytest.raises(ObjectTooLarge):  # measured, not hashed: the limit still holds
        store.put(b, io.BytesIO(data), "image/jpeg", max_bytes=len(data) - 1, sha256=sha)
    other = b"\xff\xd8\xff" + uuid.uuid4().bytes * 1000
    wrong = hashlib.sha256(other).hexdigest()
    if isinstance(store, LocalStore):  # the folder hashes what it writes anyway
        with pytest.raises(ValueError):
            _put(store, b, other, sha256=sha)
        assert [o.key for o in store.list(b)] == [info.key]  # type: ignore[attr-defined]
    with pytest.raises(ValueError):  # a stream that cannot seek is spooled, hashed and checked
        store.put(b, OneWay(other), "image/jpeg", max_bytes=1 << 20, sha256=sha)  # type: ignore[arg-type]
    assert store.stat(b, key_for(wrong)) is None and [o.key for o in store.list(b)] == [info.key]


def test_create_writes_only_a_key_that_does_not_exist_yet(store: ObjectStore, prefix: str) -> None:
    """One conditional request (S3 ``If-None-Match: *``): what existed is never overwritten."""
    b = f"{prefix}-scans"
    store.ensure_bucket(b)
    data = b"\xff\xd8\xff" + uuid.uuid4().bytes * 100
    sha = hashlib.sha256(data).hexdigest()
    made = store.create(b, data, "image/jpeg", sha256=sha)
    assert made is not None and made.key == key_for(sha) and made.size == len(data)
    assert b"".join(store.get(b, made.key)) == data
    assert store.create(b, data, "image/png", sha256=sha) is None  # exists: untouched
    st = store.stat(b, made.key)
    assert st is not None and st.content_type == "image/jpeg"
