"""The S3 object store through the MinIO SDK (keyword arguments): MinIO in production, any
S3-protocol server (moto in tests).

Every network failure becomes ``StoreUnavailable`` (the API answers 503 with Retry-After).
Uploads carry ``x-amz-checksum-sha256`` so a server that verifies checksums rejects a body that
changed on the way; object-lock uploads need a checksum header anyway.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import MinioException, S3Error, ServerError
from minio.retention import Retention

from storage.objects import (
    ObjectInfo,
    ObjectLocked,
    ObjectMissing,
    ObjectTooLarge,
    StoreUnavailable,
    key_for,
    refuse_if_retained,
)

CHUNK = 1 << 20
MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "ResourceNotFound"}


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Translate SDK and transport errors into the interface's exceptions."""
    try:
        yield
    except S3Error as exc:
        if exc.code in MISSING:
            raise ObjectMissing(what) from exc
        if exc.code == "AccessDenied":
            raise ObjectLocked(f"{what}: {exc.message}") from exc
        raise
    except (ServerError, urllib3.exceptions.HTTPError, OSError) as exc:
        raise StoreUnavailable(f"对象存储不可用 ({what}): {type(exc).__name__}") from exc
    except MinioException as exc:
        raise StoreUnavailable(f"对象存储异常 ({what}): {exc}") from exc


class S3Store:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, *, secure: bool = False,
                 region: str = "us-east-1", retention_mode: str = "COMPLIANCE",
                 connect_timeout: float = 3.0, read_timeout: float = 60.0) -> None:
        # Few quick retries: when the store is down the clerk should get a 503 in a second,
        # not after the SDK's default back-off.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(total=1, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]),
            maxsize=16,
        )
        self.client = Minio(endpoint=endpoint, access_key=access_key, secret_key=secret_key,
                            secure=secure, region=region, http_client=http)
        self.retention_mode = retention_mode
        self._known: set[str] = set()

    def ensure_bucket(self, bucket: str, *, evidence: bool = False) -> None:
        if bucket in self._known:
            return
        with _mapped(bucket):
            if not self.client.bucket_exists(bucket_name=bucket):
                try:
                    # Object lock implies versioning: a retained version survives any overwrite.
                    self.client.make_bucket(bucket_name=bucket, object_lock=evidence)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
        self._known.add(bucket)

    def put(self, bucket: str, stream: BinaryIO, content_type: str, *, max_bytes: int,
            retain_days: int | None = None, sha256: str | None = None) -> ObjectInfo:
        body, sha, size = _hashed(stream, max_bytes, sha256)
        key = key_for(sha)
        try:
            if retain_days is not None:
                # Evidence: never write a second version over bytes already retained.
                existing = self.stat(bucket, key)
                if existing is not None:
                    return existing
            retention = None
            if retain_days is not None:
                until = datetime.now(UTC) + timedelta(days=retain_days)
                retention = Retention(self.retention_mode, until)
            checksum = base64.b64encode(bytes.fromhex(sha)).decode()
            with _mapped(f"{bucket}/{key}"):
                # Scans: the same bytes overwrite themselves (stored once) and become young
                # again, so a concurrent sweep cannot take an object a new row is about to use.
                result = self.client.put_object(
                    bucket_name=bucket, object_name=key, data=body, length=size,
                    content_type=content_type, retention=retention,
                    metadata={"x-amz-sdk-checksum-algorithm": "SHA256",
                              "x-amz-checksum-sha256": checksum},
                )
            return ObjectInfo(bucket=bucket, key=key, sha256=sha, size=size,
                              content_type=content_type, created_at=datetime.now(UTC),
                              version_id=result.version_id,
                              retain_until=retention.retain_until_date if retention else None)
        finally:
            if body is not stream:
                body.close()

    def create(self, bucket: str, data: bytes, content_type: str, *, sha256: str) -> ObjectInfo | None:
        key = key_for(sha256)
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            with _mapped(f"{bucket}/{key}"):
                # A conditional write (``If-None-Match: *``; S3, MinIO, moto): the public
                # ``put_object`` of minio 7.2 cannot send it, its own single-part PUT can.
                result = self.client._put_object(  # noqa: SLF001
                    bucket_name=bucket, object_name=key, data=data,
                    headers={"Content-Type": content_type, "If-None-Match": "*",
                             "x-amz-sdk-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": checksum})
        except S3Error as exc:
            if exc.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return None  # it exists (or another writer is creating it): not ours to touch
            raise
        return ObjectInfo(bucket=bucket, key=key, sha256=sha256, size=len(data), content_type=content_type,
                          created_at=datetime.now(UTC), version_id=result.version_id)

    def get(self, bucket: str, key: str) -> Iterator[bytes]:
        with _mapped(f"{bucket}/{key}"):
            response = self.client.get_object(bucket_name=bucket, object_name=key)

        def chunks() -> Iterator[bytes]:
            try:
                with _mapped(f"{bucket}/{key}"):
                    yield from response.stream(CHUNK)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            with _mapped(f"{bucket}/{key}"):
                st = self.client.stat_object(bucket_name=bucket, object_name=key)
        except ObjectMissing:
            return None
        headers = {k.lower(): v for k, v in (st.metadata or {}).items()}
        until = headers.get("x-amz-object-lock-retain-until-date")
        return ObjectInfo(
            bucket=bucket, key=key, sha256=key.rsplit("/", 1)[-1], size=st.size or 0,
            content_type=st.content_type or "application/octet-stream",
            created_at=st.last_modified, version_id=st.version_id,
            retain_until=datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None,
            legal_hold=headers.get("x-amz-object-lock-legal-hold", "").upper() == "ON",
        )

    def presigned_url(self, bucket: str, key: str, *, seconds: int) -> str | None:
        with _mapped(f"{bucket}/{key}"):
            return self.client.presigned_get_object(bucket_name=bucket, object_name=key,
                                                    expires=timedelta(seconds=seconds))

    def copy(self, src_bucket: str, key: str, dst_bucket: str) -> ObjectInfo:
        src = self.stat(src_bucket, key)
        if src is None:
            raise ObjectMissing(f"{src_bucket}/{key}")
        existing = self.stat(dst_bucket, key)
        if existing is not None and (existing.retain_until or existing.version_id):
            return existing  # never a second version over retained evidence
        retention = Retention(self.retention_mode, src.retain_until) if src.retain_until else None
        with _mapped(f"{dst_bucket}/{key}"):
            self.client.copy_object(bucket_name=dst_bucket, object_name=key,
                                    source=CopySource(bucket_name=src_bucket, object_name=key),
                                    retention=retention)
        info = self.stat(dst_bucket, key)
        if info is None:
            raise ObjectMissing(f"{dst_bucket}/{key}")
        return info

    def delete(self, bucket: str, key: str) -> None:
        info = self.stat(bucket, key)
        if info is None:
            return
        # A plain S3 delete in a versioned bucket only adds a delete marker, which would hide
        # retained evidence: the product refuses before asking the server.
        refuse_if_retained(info)
        with _mapped(f"{bucket}/{key}"):
            self.client.remove_object(bucket_name=bucket, object_name=key)

    def list(self, bucket: str) -> Iterator[ObjectInfo]:
        with _mapped(bucket):
            for o in self.client.list_objects(bucket_name=bucket, prefix="sha256/", recursive=True):
                name = o.object_name or ""
                yield ObjectInfo(bucket=bucket, key=name, sha256=name.rsplit("/", 1)[-1],
                                 size=o.size or 0, content_type=o.content_type or "",
                                 created_at=o.last_modified, version_id=o.version_id)

    def buckets(self) -> list[str]:
        with _mapped("buckets"):
            return sorted(b.name for b in self.client.list_buckets())

    def set_legal_hold(self, bucket: str, key: str, on: bool) -> None:
        with _mapped(f"{bucket}/{key}"):
            if on:
                self.client.enable_object_legal_hold(bucket_name=bucket, object_name=key)
            else:
                self.client.disable_object_legal_hold(bucket_name=bucket, object_name=key)


def _hashed(stream: BinaryIO, max_bytes: int, sha256: str | None = None) -> tuple[BinaryIO, str, int]:
    """The key needs the hash before the upload: one pass over the stream that measures, hashes
    and, for a stream that cannot seek back, spools. A seekable stream whose digest the caller
    already has (hashed while it arrived) is only measured: no second pass over its bytes; the
    digest still travels as ``x-amz-checksum-sha256``, so a verifying server refuses a mismatch."""
    seekable = stream.seekable()
    start = stream.tell() if seekable else 0
    if seekable and sha256 is not None:
        size = stream.seek(0, io.SEEK_END) - start
        stream.seek(start)
        if size > max_bytes:
            raise ObjectTooLarge(f"more than {max_bytes} bytes")
        return stream, sha256, size
    spool: BinaryIO | None = None if seekable else tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # type: ignore[assignment]  # noqa: SIM115 (returned)
    h, size = hashlib.sha256(), 0
    try:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise ObjectTooLarge(f"more than {max_bytes} bytes")
            h.update(chunk)
            if spool is not None:
                spool.write(chunk)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    body = spool if spool is not None else stream
    body.seek(0 if spool is not None else start)
    if sha256 is not None and sha256 != h.hexdigest():
        if spool is not None:
            spool.close()
        raise ValueError(f"the bytes hash to {h.hexdigest()}, not to the digest given ({sha256})")
    return body, h.hexdigest(), size
