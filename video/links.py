"""Signed, expiring join links: ``<payload>.<hmac>``, bound to a case, a room and a role.

The payload is base64url JSON; the HMAC-SHA256 key comes from settings (or a per-installation
secret file), so a link can be checked by any process without a database lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.install_secrets import install_secret
from core.settings import get_settings
from engine.errors import Forbidden

ROLES = {"clerk": "窗口工作人员", "applicant": "申请人", "approver": "远程审批人员", "expert": "专家"}


@dataclass(frozen=True)
class JoinClaim:
    number: str
    room_id: str
    role: str
    name: str
    clerk_id: int | None
    expires_at: datetime


def _secret() -> bytes:
    return install_secret("video-secret", get_settings().video_secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(body: str) -> str:
    return _b64(hmac.new(_secret(), body.encode(), hashlib.sha256).digest())


def issue(number: str, room_id: str, role: str, name: str, clerk_id: int | None,
          minutes: int | None = None, now: datetime | None = None) -> tuple[str, datetime]:
    expires = (now or datetime.now(UTC)) + timedelta(
        minutes=minutes if minutes is not None else get_settings().video_link_minutes)
    body = _b64(json.dumps({"c": number, "r": room_id, "o": role, "n": name, "k": clerk_id,
                            "e": int(expires.timestamp())}, ensure_ascii=False,
                           separators=(",", ":")).encode())
    return f"{body}.{_sign(body)}", expires


def verify(token: str, number: str | None = None, room_id: str | None = None) -> JoinClaim:
    """Check signature, expiry and binding; every refusal is a 403 saying why."""
    body, _, sig = token.partition(".")
    if not body or not sig or not hmac.compare_digest(sig.encode(), _sign(body).encode()):
        raise Forbidden("入会链接无效(签名不符)", missing=["join_link"])
    try:
        p = json.loads(_unb64(body))
        claim = JoinClaim(str(p["c"]), str(p["r"]), str(p["o"]), str(p["n"]),
                          p["k"] if isinstance(p["k"], int) else None,
                          datetime.fromtimestamp(int(p["e"]), UTC))
    except (ValueError, KeyError, TypeError) as exc:
        raise Forbidden("入会链接无效(内容损坏)", missing=["join_link"]) from exc
    if claim.expires_at <= datetime.now(UTC):
        raise Forbidden("入会链接已过期, 请向窗口工作人员索取新链接", missing=["join_link"])
    if number is not None and claim.number != number:
        raise Forbidden("入会链接不属于此办件", missing=["join_link"])
    if room_id is not None and claim.room_id != room_id:
        raise Forbidden("入会链接不属于此会议室", missing=["join_link"])
    if claim.role not in ROLES:
        raise Forbidden("入会链接角色无效", missing=["join_link"])
    return claim
