"""The local-folder object store: the embedded default of ``tongban serve``.

Layout under the root folder::

    <bucket>/.bucket.json            {"evidence": bool}
    <bucket>/sha256/<hex>            the bytes (read-only for evidence)
    <bucket>/.meta/<hex>.json        sidecar: content type, retention date, legal hold
    <bucket>/.tmp/                   uploads in progress (renamed into place when complete)

Retention is enforced by the sidecar record: ``delete`` refuses a retained or held object, and
a put of bytes already stored never rewrites them. Writes are atomic renames, so a crash never
leaves a half-written object under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from storage.objects import ObjectInfo, ObjectMissing, ObjectTooLarge, key_for, refuse_if_retained

CHUNK = 1 << 20


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class LocalStore:
    def __init__(self, root: Path, *, retention_mode: str = "COMPLIANCE") -> None:
        self.root = Path(root)
        self.retention_mode = retention_mode
        self.root.mkdir(parents=True, exist_ok=True)
        self._evidence: dict[str, bool] = {}  # bucket → evidence flag, once its marker is read

    # --- paths -----------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        if not bucket or "/" in bucket or "\\" in bucket or bucket.startswith("."):
            raise ValueError(f"invalid bucket name {bucket!r}")
        return self.root / bucket

    def _paths(self, bucket: str, key: str) -> tuple[Path, Path]:
        prefix, _, hexdigest = key.partition("/")
        if prefix != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ObjectMissing(key)  # keys are content-addressed; anything else cannot exist
        b = self._bucket_dir(bucket)
        return b / "sha256" / hexdigest, b / ".meta" / f"{hexdigest}.json"

    def _require_bucket(self, bucket: str) -> Path:
        b = self._bucket_dir(bucket)
        if bucket not in self._evidence and not (b / ".bucket.json").exists():
            raise ObjectMissing(f"bucket {bucket}")
        return b

    def _is_evidence(self, bucket: str) -> bool:
        if bucket not in self._evidence:
            marker = self._bucket_dir(bucket) / ".bucket.json"
            if not marker.exists():
                return False
            self._evidence[bucket] = bool(json.loads(marker.read_text()).get("evidence"))
        return self._evidence[bucket]

    # --- interface -------------------------------------------------------------------------
    def ensure_bucket(self, bucket: str, *, evidence: bool = False) -> None:
        if bucket in self._evidence:
            return
        b = self._bucket_dir(bucket)
        for sub in ("sha256", ".meta", ".tmp"):
            (b / sub).mkdir(parents=True, exist_ok=True)
        marker = b / ".bucket.json"
        if not marker.exists():
            _atomic_write(marker, json.dumps({"evidence": evidence}).encode())
        self._is_evidence(bucket)

    def put(self, bucket: str, stream: BinaryIO, content_type: str, *, max_bytes: int,
            retain_days: int | None = None, sha256: str | None = None) -> ObjectInfo:
        b = self._require_bucket(bucket)
        h, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=b / ".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ObjectTooLarge(f"more than {max_bytes} bytes")
                    h.update(chunk)
                    out.write(chunk)
            sha = h.hexdigest()
            if sha256 is not None and sha256 != sha:  # the folder hashes what it writes anyway
                raise ValueError(f"the bytes hash to {sha}, not to the digest given ({sha256})")
            key = key_for(sha)
            path, meta_path = self._paths(bucket, key)
            if path.exists():
                if not self._is_evidence(bucket):
                    os.utime(path)  # young again: the sweep must not take it before its row lands
                return self._info(bucket, key, path, meta_path)
            meta: dict[str, Any] = {"content_type": content_type, "size": size}
            if retain_days is not None:
                until = datetime.now(UTC) + timedelta(days=retain_days)
                meta |= {"retain_until": until.isoformat(), "mode": self.retention_mode}
            _atomic_write(meta_path, json.dumps(meta).encode())  # sidecar before the bytes
            os.replace(tmp, path)
            if self._is_evidence(bucket):
                path.chmod(0o444)
            return self._info(bucket, key, path, meta_path)
        finally:
            tmp.unlink(missing_ok=True)

    def create(self, bucket: str, data: bytes, content_type: str, *, sha256: str) -> ObjectInfo | None:
        b = self._require_bucket(bucket)
        if self._is_evidence(bucket):
            raise ValueError("create is for scans; evidence goes through put (retention)")
        key = key_for(sha256)
        path, meta_path = self._paths(bucket, key)
        if path.exists():
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"the bytes do not hash to the digest given ({sha256})")
        fd, tmp_name = tempfile.mkstemp(dir=b / ".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            _atomic_write(meta_path, json.dumps({"content_type": content_type, "size": len(data)}).encode())
            try:
                os.link(tmp, path)  # atomic: fails if the key appeared meanwhile, never overwrites
            except FileExistsError:
                return None
            return self._info(bucket, key, path, meta_path)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, bucket: str, key: str) -> Iterator[bytes]:
        path, _ = self._paths(bucket, key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise ObjectMissing(f"{bucket}/{key}") from None

        def chunks() -> Iterator[bytes]:
            with f:
                while chunk := f.read(CHUNK):
                    yield chunk

        return chunks()

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            path, meta_path = self._paths(bucket, key)
        except ObjectMissing:
            return None
        if not path.exists():
            return None
        return self._info(bucket, key, path, meta_path)

    def presigned_url(self, bucket: str, key: str, *, seconds: int) -> str | None:
        return None  # the API streams local objects itself

    def copy(self, src_bucket: str, key: str, dst_bucket: str) -> ObjectInfo:
        src = self.stat(src_bucket, key)
        if src is None:
            raise ObjectMissing(f"{src_bucket}/{key}")
        existing = self.stat(dst_bucket, key)
        if existing is not None:
            return existing
        path, _ = self._paths(src_bucket, key)
        days = None
        if src.retain_until is not None:  # retention travels with the copy
            days = max(0, (src.retain_until - datetime.now(UTC)).days + 1)
        with path.open("rb") as f:
            info = self.put(dst_bucket, f, src.content_type, max_bytes=src.size, retain_days=days)
        if info.sha256 != src.sha256:
            raise OSError(f"copy of {key} does not match its hash")
        return info

    def delete(self, bucket: str, key: str) -> None:
        info = self.stat(bucket, key)
        if info is None:
            return
        refuse_if_retained(info)
        path, meta_path = self._paths(bucket, key)
        path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)

    def list(self, bucket: str) -> Iterator[ObjectInfo]:
        d = self._bucket_dir(bucket) / "sha256"
        if not d.exists():
            return
        for path in sorted(d.iterdir()):
            key = key_for(path.name)
            _, meta_path = self._paths(bucket, key)
            if path.exists():
                yield self._info(bucket, key, path, meta_path)

    def buckets(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / ".bucket.json").exists())

    def set_legal_hold(self, bucket: str, key: str, on: bool) -> None:
        path, meta_path = self._paths(bucket, key)
        if not path.exists():
            raise ObjectMissing(f"{bucket}/{key}")
        meta = _read_meta(meta_path)
        meta["legal_hold"] = on
        _atomic_write(meta_path, json.dumps(meta).encode())

    # --- helpers ---------------------------------------------------------------------------
    def _info(self, bucket: str, key: str, path: Path, meta_path: Path) -> ObjectInfo:
        st = path.stat()
        meta = _read_meta(meta_path)
        until = meta.get("retain_until")
        return ObjectInfo(
            bucket=bucket, key=key, sha256=key.split("/", 1)[1], size=st.st_size,
            content_type=meta.get("content_type", "application/octet-stream"),
            created_at=_utc(st.st_mtime),
            retain_until=datetime.fromisoformat(until) if until else None,
            legal_hold=bool(meta.get("legal_hold")),
        )


def _read_meta(meta_path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(meta_path.read_text()))
    except FileNotFoundError:
        return {}


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".w-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
