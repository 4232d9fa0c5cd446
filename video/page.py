"""The room page (Jinja2): the same page for every role, with the controls the role may use."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from core.clock import now
from core.settings import get_settings
from video import backends, kinds, turn
from video.hub import CAPTURE_ROLES
from video.links import ROLES, JoinClaim

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
# A room without a case (视频帮办) is left for the page each side came from.
HELP_BACK = {"applicant": ("/kiosk", "返回自助终端首页"), "clerk": ("/ui/help", "返回视频帮办列表")}


def render_room(request: Request, claim: JoinClaim, room: dict[str, Any],
                materials: list[dict[str, str]], checklist: list[dict[str, str]]) -> HTMLResponse:
    has_case = bool(room["number"])
    config = {"token": claim_token(request), "room": room["id"], "role": claim.role,
              "name": claim.name, "kind": room["kind"], "materials": materials,
              "checklist": checklist, "canCapture": claim.role in CAPTURE_ROLES and has_case,
              "canEnd": claim.role == "clerk",
              "canInspect": claim.role == "clerk" and claim.clerk_id is not None and bool(checklist),
              "iceServers": ice_servers(room["id"], claim.role, claim.expires_at), "backend": backends.selected(),
              "iceTransportPolicy": "relay" if get_settings().turn_relay_only else "all"}
    return templates.TemplateResponse(request, "room.html", {
        "config": config, "claim": claim, "room": room, "role_label": ROLES[claim.role],
        "kind_label": kinds.label(room["kind"]), "materials": materials,
        "checklist": checklist, "has_case": has_case,
        "back": None if has_case else HELP_BACK.get(claim.role),
    }, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def ice_servers(room_id: str, role: str, until: datetime | None = None) -> list[dict[str, object]]:
    """The page's TURN server with a short-lived TURN REST credential (none when no TURN is set).

    It lives ``turn_ttl_seconds``, and at least until ``until`` (the join link's expiry): a page
    opened from a link must not lose its relay while the link that let it in is still good."""
    at = int(now().timestamp())  # the credential's expiry counts in whole seconds from here
    ttl = get_settings().turn_ttl_seconds
    if until is not None:
        ttl = max(ttl, math.ceil(until.timestamp() - at))
    cred = turn.credential(f"{room_id}:{role}", ttl=ttl, at=at)
    return [cred.ice_server()] if cred is not None else []


def claim_token(request: Request) -> str:
    return request.query_params.get("t", "")
