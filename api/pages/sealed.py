"""Sealed short-lived cookies of the applicant's pages (no login): what a POST hands to the GET it
redirects to — a lookup that passed (the query code, the 预约码), or why it did not.

A secret of the applicant never goes into an address (the history, a proxy's log, the Referer),
so post/redirect/get carries it in a cookie: JSON sealed with AES-GCM under a key of the
installation, bound to the cookie's one use (a value sealed for one cookie opens in no other),
with its expiry inside; HttpOnly, SameSite=Strict, only sent to the pages that read it. Opaque to
whoever reads it, and it cannot be made or altered without the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request
from fastapi.responses import Response

from core import clock
from core.install_secrets import install_secret
from core.settings import get_settings
from engine.ratelimit import BoundedWindows

MAX_CHARS = 2048  # a longer cookie value was not sealed here
FRESH_SECONDS = 30


@dataclass(frozen=True)
class SealedCookie:
    name: str
    path: str
    seconds: int
    use: bytes  # what the value is for: its key and associated data are bound to it

    def _cipher(self) -> AESGCM:
        # The login form's secret, with a key of its own for this use.
        secret = install_secret("session-secret", get_settings().session_secret)
        return AESGCM(hashlib.sha256(self.use + b"\0" + secret).digest())

    def seal(self, value: Any) -> str:
        expires = int(clock.now().timestamp()) + self.seconds
        nonce = os.urandom(12)
        body = self._cipher().encrypt(nonce, orjson.dumps([value, expires]), self.use)
        return base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")

    def open(self, request: Request) -> Any | None:
        """The value this browser was given, while it lasts; None when absent, expired or not ours."""
        raw_value = request.cookies.get(self.name)
        if not raw_value or len(raw_value) > MAX_CHARS:
            return None
        try:
            raw = base64.urlsafe_b64decode(raw_value + "=" * (-len(raw_value) % 4))
            value, expires = orjson.loads(self._cipher().decrypt(raw[:12], raw[12:], self.use))
        except (InvalidTag, ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            return None
        if not isinstance(expires, int) or expires < clock.now().timestamp():
            return None
        return value

    def give(self, request: Request, resp: Response, value: Any) -> None:
        resp.set_cookie(self.name, self.seal(value), max_age=self.seconds, path=self.path, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")

    def clear(self, request: Request, resp: Response) -> None:
        if self.name in request.cookies:
            resp.delete_cookie(self.name, path=self.path, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")


@dataclass(frozen=True)
class Refusal:
    """Why a POST of the applicant's pages did not pass, shown once by the GET it redirects to
    (``kept``: what the applicant had typed, for the form to show again)."""
    detail: str
    status: int
    retry_after: int | None = None
    kept: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.status == 429 and self.retry_after else {}


def refusal_value(subject: str, detail: str, status: int, retry_after: int | None = None,
                  kept: dict[str, str] | None = None) -> list[Any]:
    return [subject, detail, status, retry_after, kept or {}]


def open_refusal(cookie: SealedCookie, request: Request, subject: str) -> Refusal | None:
    """The refusal sealed for ``subject`` (a case number, a page), else None."""
    value = cookie.open(request)
    if not isinstance(value, list) or len(value) != 5 or value[0] != subject:
        return None
    _, detail, status, retry_after, kept = value
    if not isinstance(detail, str) or not isinstance(status, int) or not 400 <= status < 600:
        return None
    kept = {str(k): str(v) for k, v in kept.items()} if isinstance(kept, dict) else {}
    return Refusal(detail, status, retry_after if isinstance(retry_after, int) else None, kept)


_spent = BoundedWindows(window=120, max_keys=20_000)  # nonces of fresh tickets already used


def fresh_nonce() -> list[Any]:
    """A mark for a ticket whose POST counted the lookup against the client's budget."""
    return [secrets.token_urlsafe(12), int(clock.now().timestamp())]


def spend_fresh(mark: Any, seconds: int = FRESH_SECONDS) -> bool:
    """Whether the ticket's lookup was counted already: its POST was at most ``seconds`` ago and
    this is the first GET to present it (in this process). F5 after that counts again."""
    if not isinstance(mark, list) or len(mark) != 2 or not isinstance(mark[0], str) or not isinstance(mark[1], int):
        return False
    return clock.now().timestamp() - mark[1] <= seconds and _spent.hit(mark[0], 1) is None
