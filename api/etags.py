"""ETags of case representations, and If-None-Match (304) on reading them.

A case's ETag is ``"<version>-<digest>"``: the version is what ``If-Match`` compares (a change
based on version 7 is refused once the case is at 8), the digest is of the answer's bytes. The
digest is there because a case's representation changes without a new version: the daily sweep
turns a deadline 预警, a colleague's claim closes a trigger for this clerk. So a poller sending
``If-None-Match`` gets 304 exactly when it already holds these bytes, never a stale 正常.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header, Response

IfNoneMatchHeader = Annotated[str | None, Header(
    alias="If-None-Match", max_length=400,
    description="上次答复的 ETag: 表示未变时答复 304 (无正文), 用于轮询")]


def case_etag(version: int, body: bytes) -> str:
    return f'"{version}-{digest(body)}"'


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names this ETag (weak comparison, RFC 9110 §13.1.2), or is ``*``."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def not_modified(etag: str, cache_control: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
