"""The one object-store interface. Implementations: the MinIO SDK (any S3 server)
and a local folder (the embedded default). Keys are content-addressed: ``sha256/<hex>``.

Buckets are named by purpose and region (see ``bucket_for``) so a hand-off can copy objects
between regions that keep separate buckets. Evidence buckets are versioned with object lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Literal, Protocol

BucketKind = Literal["scans", "evidence", "drafts"]


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str  # "sha256/<hex>"
    sha256: str
    size: int
    content_type: str
    created_at: datetime | None = None
    version_id: str | None = None  # evidence buckets are versioned
    retain_until: datetime | None = None
    legal_hold: bool = False


class StoreUnavailable(Exception):
    """The object store cannot be reached; callers answer 503 with Retry-After."""


class ObjectMissing(KeyError):
    """No such object (or bucket)."""


class ObjectLocked(Exception):
    """Refused: the object is under retention or legal hold (evidence)."""


class ObjectTooLarge(ValueError):
    """The stream exceeded ``max_bytes``; nothing was stored."""


def refuse_if_retained(info: ObjectInfo) -> None:
    """Retained or held evidence is never deleted through the product, whatever the backend."""
    if info.legal_hold or (info.retain_until and info.retain_until > datetime.now(UTC)):
        raise ObjectLocked(f"{info.bucket}/{info.key} 处于保留期或法律保全, 不能删除")


def bucket_for(kind: BucketKind, region_code: str | None, *, prefix: str = "tongban",
               per_region: bool = True) -> str:
    """``<prefix>-<kind>-<region>``: one bucket per purpose and region (S3 naming rules)."""
    if per_region and region_code:
        return f"{prefix}-{kind}-{region_code}".lower()
    return f"{prefix}-{kind}".lower()


def key_for(sha256: str) -> str:
    return f"sha256/{sha256}"


class ObjectStore(Protocol):
    def ensure_bucket(self, bucket: str, *, evidence: bool = False) -> None:
        """Create if missing; evidence buckets get versioning and object lock."""

    def put(self, bucket: str, stream: BinaryIO, content_type: str, *, max_bytes: int,
            retain_days: int | None = None, sha256: str | None = None) -> ObjectInfo:
        """Store from a stream while hashing; the same bytes twice are stored once.

        ``sha256``: the hex digest of the stream's bytes when the caller already has it (hashed
        while the upload arrived), so the store need not read them twice. S3 sends it as
        ``x-amz-checksum-sha256`` (a verifying server refuses a mismatch); the folder store
        hashes what it writes anyway and refuses a mismatch."""

    def create(self, bucket: str, data: bytes, content_type: str, *, sha256: str) -> ObjectInfo | None:
        """Store ``data`` (whose hex digest is ``sha256``) only if its key does not exist yet, in
        one request; None (and nothing written) when it did. Scans only, never evidence."""

    def get(self, bucket: str, key: str) -> Iterator[bytes]: ...

    def stat(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def presigned_url(self, bucket: str, key: str, *, seconds: int) -> str | None:
        """A short-lived download URL, or None when the store streams through the API."""

    def copy(self, src_bucket: str, key: str, dst_bucket: str) -> ObjectInfo: ...

    def delete(self, bucket: str, key: str) -> None:
        """Refused (raises) for objects under retention or legal hold."""

    def list(self, bucket: str) -> Iterator[ObjectInfo]: ...

    def buckets(self) -> list[str]:
        """Names of all buckets (the sweep walks those with the configured prefix)."""

    def set_legal_hold(self, bucket: str, key: str, on: bool) -> None:
        """Legal hold blocks deletion regardless of the retention date."""

