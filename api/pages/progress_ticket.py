"""The progress page's ticket: a lookup that passed, carried from the POST to the GET it redirects to.

The query code is the applicant's credential, so it never goes into an address (the history, a
proxy's log, the Referer). After the POST checked it, the answer is a 303 to ``/progress?number=…``
with the number and code sealed into a cookie (AES-GCM under a key of the installation, bound to
this use; HttpOnly, SameSite=Strict, only sent to /progress, for ``MINUTES``): the GET opens it
and looks the case up again, through the same limiters. F5 then repeats a GET, never the POST,
and Back returns to pages that are fetched again. The cookie is opaque to whoever reads it and
cannot be made or altered without the key; a ticket for another number is ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request
from fastapi.responses import Response

from core import clock
from core.install_secrets import install_secret
from core.settings import get_settings

COOKIE = "tb_progress"
PATH = "/progress"
MINUTES = 15
_BOUND = b"tongban-progress-ticket"


def _cipher() -> AESGCM:
    # The login form's secret, with a key of its own for this use.
    secret = install_secret("session-secret", get_settings().session_secret)
    return AESGCM(hashlib.sha256(_BOUND + b"\0" + secret).digest())


def seal(number: str, code: str) -> str:
    expires = int(clock.now().timestamp()) + MINUTES * 60
    nonce = os.urandom(12)
    body = _cipher().encrypt(nonce, orjson.dumps([number, code, expires]), _BOUND)
    return base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")


def code_for(request: Request, number: str) -> str | None:
    """The query code of a lookup of ``number`` that passed in this browser lately, else None."""
    value = request.cookies.get(COOKIE)
    if not value or not number or len(value) > 512:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        sealed_number, code, expires = orjson.loads(_cipher().decrypt(raw[:12], raw[12:], _BOUND))
    except (InvalidTag, ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        return None
    if sealed_number != number or not isinstance(code, str) or expires < clock.now().timestamp():
        return None
    return code


def give(request: Request, resp: Response, number: str, code: str) -> None:
    resp.set_cookie(COOKIE, seal(number, code), max_age=MINUTES * 60, path=PATH, httponly=True,
                    samesite="strict", secure=request.url.scheme == "https")
