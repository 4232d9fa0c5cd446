"""Video steps over the product's own API: rooms, join links, signalling, capture, inspection.

Clerks manage rooms with their bearer token. Participants authenticate with a signed join
link once (POST /api/v1/video/join with their offer) and then with the participant key that
join returns (header ``X-Participant-Key``). Offers and answers are complete SDP (no trickle).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import Header, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.enums import ParticipantRole, value_of
from api.models import (
    InspectionSubmitted,
    Joined,
    Left,
    Page,
    Room,
    RoomClosed,
    RoomList,
    SessionDescription,
    VideoLink,
)
from api.routes.documents import page_view
from api.routing import Router
from api.schemas import NON_BLANK
from engine import extensions
from engine.access import require_case_reader
from engine.advance import load_case
from engine.errors import Forbidden, NotFound
from storage.db import bound_engine
from video import inspection, kinds, links, rooms
from video.hub import Hub
from video.live import LiveRoom, Peer
from video.page import STATIC, render_room

# Join links and participant keys are checked by the routes themselves: a bad one is 403.
router = Router(tags=["video"], responses=problems(403))
KeyHeader = Annotated[str | None, Header(alias="X-Participant-Key", max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, pattern=NON_BLANK)]
SDP_MAX = 200_000
Sdp = Annotated[str, StringConstraints(min_length=10, max_length=SDP_MAX)]
# The join's body is its credential (the signed token): the longest offer, JSON-escaped, fits.
router.allow_larger("/api/v1/video/join", lambda: 2 * SDP_MAX + 16_384, uncredentialed=True)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _registered_kinds(schema: dict[str, Any]) -> None:
    """The document lists the video steps registered when it is built (engine.extensions)."""
    schema["enum"] = sorted(e.name for e in extensions.VIDEO_KINDS)


class RoomOpen(_Body):
    # A registered video step (consultation 远程会商, inspection 远程踏勘, guidance 远程指导办件 …).
    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", json_schema_extra=_registered_kinds)] | None = None


class LinkRequest(_Body):
    role: value_of(ParticipantRole)  # type: ignore[valid-type]
    name: Name
    clerk_id: int | None = Field(default=None, ge=1)
    minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)


class Offer(_Body):
    sdp: Sdp
    type: Literal["offer"] = "offer"


class JoinBody(Offer):
    token: Annotated[str, StringConstraints(min_length=10, max_length=2000)]


class ViewBody(Offer):
    publisher: Annotated[str, StringConstraints(min_length=1, max_length=32)]


class CaptureBody(_Body):
    participant: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    material_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class InspectionBody(_Body):
    results: dict[str, bool]
    notes: dict[str, Annotated[str, StringConstraints(max_length=500)]] = {}
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None


def hub_of(request: Request) -> Hub:
    """One hub per application, created on the loop that serves it."""
    hub = getattr(request.app.state, "video_hub", None)
    if hub is None:
        hub = request.app.state.video_hub = Hub()
    return hub


def _participant(request: Request, room_id: str, key: str | None) -> tuple[Hub, LiveRoom, Peer]:
    hub = hub_of(request)
    room = hub.live(room_id)
    return hub, room, room.by_key(key)


def _engine(session: Session) -> Any:
    return bound_engine(session)


def _link_out(request: Request, room: dict[str, Any], token: str, expires: Any, role: str) -> dict[str, Any]:
    return {"room": room["id"], "number": room["number"], "role": role, "token": token,
            "expires_at": expires, "url": str(request.url_for("video_join_page")) + f"?t={token}"}


# -- clerks: rooms and links ---------------------------------------------------------------
@router.post("/api/v1/cases/{number}/video-rooms", status_code=201, response_model=Room)
def open_room(number: str, session: SessionDep, actor: ActorDep, body: RoomOpen | None = None) -> Any:
    """开启视频会议室"""
    row = rooms.open_room(session, number, actor, (body or RoomOpen()).kind)
    return rooms.describe(session, row["id"])


@router.get("/api/v1/cases/{number}/video-rooms", response_model=RoomList)
def list_rooms(number: str, session: SessionDep, actor: ActorDep) -> Any:
    """列出办件的视频会议室"""
    require_case_reader(session, actor, load_case(session, number))
    return {"items": rooms.rooms_of_case(session, number), "next_cursor": None}


@router.post("/api/v1/video/rooms/{room_id}/links", status_code=201, response_model=VideoLink)
def issue_link(room_id: str, body: LinkRequest, request: Request, session: SessionDep,
               actor: ActorDep) -> Any:
    """签发入会链接"""
    room = rooms.room_for_clerk(session, room_id, actor)
    clerk_id = rooms.check_link_request(session, room, body.role, body.clerk_id, actor)
    token, expires = links.issue(room["number"], room_id, body.role, body.name, clerk_id, body.minutes)
    return _link_out(request, room, token, expires, body.role)


@router.post("/api/v1/video/rooms/{room_id}/close", response_model=RoomClosed)
async def close_room(room_id: str, request: Request, session: SessionDep, actor: ActorDep) -> Any:
    """关闭会议室"""
    def check() -> None:  # a database round trip: on a worker thread, never on the loop
        rooms.room_for_clerk(session, room_id, actor)
        session.commit()  # end this transaction: the hub writes in its own (SQLite allows one writer)

    await anyio.to_thread.run_sync(check)
    hub = hub_of(request)
    hub.engine = hub.engine or _engine(session)
    await hub.close(room_id, "ended", actor)
    return {"room": room_id, "status": "closed"}


# -- participants: signalling and in-room actions ------------------------------------------
@router.post("/api/v1/video/join", response_model=Joined)
async def join_room(body: JoinBody, request: Request, session: SessionDep) -> Any:
    """凭入会链接加入会议 (SDP offer)"""
    claim = links.verify(body.token)
    engine = _engine(session)
    session.close()  # the hub works in its own short transactions
    hub = hub_of(request)
    out = await hub.join(engine, claim, body.sdp, body.type)
    out["materials"] = await hub.db(engine, rooms.materials, claim.number)
    out["checklist"] = await hub.db(engine, kinds.checklist, out["kind"], claim.number)
    return out


@router.post("/api/v1/video/rooms/{room_id}/views", response_model=SessionDescription)
async def view_publisher(room_id: str, body: ViewBody, request: Request, key: KeyHeader = None) -> Any:
    """订阅参会者的音视频"""
    hub, room, peer = _participant(request, room_id, key)
    return await hub.view(room, peer, body.publisher, body.sdp, body.type)


@router.post("/api/v1/video/rooms/{room_id}/leave", response_model=Left)
async def leave_room(room_id: str, request: Request, key: KeyHeader = None,
                k: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    """离开会议室"""
    # ``k`` lets navigator.sendBeacon (which cannot set headers) leave on page unload.
    hub, room, peer = _participant(request, room_id, key or k)
    await hub.leave(room, peer, "left")
    return {"room": room_id, "participant": peer.id, "left": True}


@router.post("/api/v1/video/rooms/{room_id}/end", response_model=RoomClosed)
async def end_room(room_id: str, request: Request, key: KeyHeader = None) -> Any:
    """结束会议 (窗口工作人员)"""
    hub, room, peer = _participant(request, room_id, key)
    if peer.role != "clerk":
        raise Forbidden("只有窗口工作人员可以结束会议", missing=["role:clerk"])
    await hub.close(room_id, "ended", peer.actor)
    return {"room": room_id, "status": "closed"}


@router.post("/api/v1/video/rooms/{room_id}/invites", status_code=201, response_model=VideoLink)
async def invite_participant(room_id: str, body: LinkRequest, request: Request, key: KeyHeader = None) -> Any:

    """邀请参会者

    The clerk in the room invites others (applicant, expert, remote approver) by link."""
    hub, room, peer = _participant(request, room_id, key)
    if peer.role != "clerk" or peer.clerk_id is None:
        raise Forbidden("只有窗口工作人员可以邀请参会者", missing=["role:clerk"])

    def check(session: Session) -> tuple[dict[str, Any], int | None]:
        row = rooms.room_for_clerk(session, room_id, peer.actor)
        return row, rooms.check_link_request(session, row, body.role, body.clerk_id, peer.actor)

    row, clerk_id = await hub.db(room.engine, check)
    token, expires = links.issue(row["number"], room_id, body.role, body.name, clerk_id, body.minutes)
    return _link_out(request, row, token, expires, body.role)


@router.post("/api/v1/video/rooms/{room_id}/captures", status_code=201, response_model=Page)
async def capture_still(room_id: str, body: CaptureBody, request: Request, key: KeyHeader = None) -> Any:
    """拍照留证 (存为材料扫描页)"""
    hub, room, peer = _participant(request, room_id, key)
    await hub.db(room.engine, rooms.admit_for_action, room_id)
    return page_view(room.number, await hub.capture(room, peer, body.participant, body.material_id))


@router.post("/api/v1/video/rooms/{room_id}/inspection", response_model=InspectionSubmitted)
async def submit_inspection(room_id: str, body: InspectionBody, request: Request,
                            key: KeyHeader = None) -> Any:
    """提交远程踏勘结果"""
    hub, room, peer = _participant(request, room_id, key)
    out = await hub.db(room.engine, inspection.submit, room_id, peer.actor, body.results,
                       body.notes, body.comment)
    await hub.close(room_id, "state_left")  # the case has left the inspection state
    return out


# -- pages ---------------------------------------------------------------------------------
@router.get("/video/join", response_class=HTMLResponse, name="video_join_page", include_in_schema=False)
def join_page(request: Request, session: SessionDep,
              t: Annotated[str, Query(min_length=10, max_length=2000)]) -> Any:
    claim = links.verify(t)
    try:
        room = rooms.admit(session, claim)
    except Forbidden as exc:
        if exc.extra.get("reason") == "state_left":
            # Keep the closing even though the request fails (the dependency rolls back).
            session.rollback()
            rooms.close(session, claim.room_id, "state_left")
            session.commit()
        raise
    return render_room(request, claim, room, rooms.materials(session, claim.number),
                       kinds.checklist(session, room["kind"], claim.number))


@router.get("/video/static/{name}", include_in_schema=False)
def static(name: str) -> Any:
    path = STATIC / name
    if name not in {"room.js", "room.css"} or not path.exists():
        raise NotFound(f"{name} 不存在")
    return FileResponse(path)
