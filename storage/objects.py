"""The one object-store interface (Decision 4). Implementations: the MinIO SDK (any S3 server)
and a local folder (the embedded default). Keys are content-addressed: ``sha256/<hex>``.

Buckets are named by purpose and region (see ``bucket_for``) so a hand-off can copy objects
between regions that keep separate buckets. Evidence buckets are versioned with object lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Literal, Protocol

BucketKind = Literal["scans", "evidence"]


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str  # "sha256/<hex>"
    sha256: str
    size: int
    content_type: str
    created_at: datetime | None = None


class StoreUnavailable(Exception):
    """The object store cannot be reached; callers answer 503 with Retry-After."""


class ObjectStore(Protocol):
    def ensure_bucket(self, bucket: str, *, evidence: bool = False) -> None:
        """Create if missing; evidence buckets get versioning and object lock."""

    def put(self, bucket: str, stream: BinaryIO, content_type: str, *, max_bytes: int,
            retain_days: int | None = None) -> ObjectInfo:
        """Store from a stream while hashing; the same bytes twice are stored once."""

    def get(self, bucket: str, key: str) -> Iterator[bytes]: ...

    def stat(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def presigned_url(self, bucket: str, key: str, *, seconds: int) -> str | None:
        """A short-lived download URL, or None when the store streams through the API."""

    def copy(self, src_bucket: str, key: str, dst_bucket: str) -> ObjectInfo: ...

    def delete(self, bucket: str, key: str) -> None:
        """Refused (raises) for objects under retention or legal hold."""

    def list(self, bucket: str) -> Iterator[ObjectInfo]: ...
