"""Video steps over the product's own API: rooms, join links, signalling, capture, inspection.

Clerks manage rooms with their bearer token. Participants authenticate with a signed join
link once (POST /api/v1/video/join with their offer) and then with the participant key that
join returns (header ``X-Participant-Key``). Offers and answers are complete SDP (no trickle).

With ``TONGBAN_VIDEO_BACKEND=janus`` the join carries no offer: it answers with the Janus room,
the participant's VideoRoom token and publisher id, and the page negotiates with Janus through
the same-origin proxy ``/video/janus`` (janus.js, served from ``/video/static/janus.js``). What the
embedded hub sends over the data channel is then polled from ``…/events`` and sent to
``…/messages``; a still the clerk asks for is uploaded by the page to ``…/stills/{request}``.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import httpx
from fastapi import Header, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.enums import ParticipantRole, value_of
from api.models import (
    InspectionSubmitted,
    Joined,
    Left,
    MessageReply,
    Page,
    Room,
    RoomClosed,
    RoomEvents,
    RoomList,
    SessionDescription,
    VideoLink,
)
from api.routes.documents import page_view
from api.routing import Router
from api.schemas import NON_BLANK
from core.clock import now
from core.settings import get_settings
from engine import extensions
from engine.access import require_case_reader
from engine.advance import load_case
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from engine.scan_validation import UploadTooLarge
from storage.db import bound_engine
from video import backends, inspection, kinds, links, rooms
from video.backends import janus
from video.hub import Hub
from video.janus_hub import JanusHub
from video.live import LiveRoom, Peer
from video.page import STATIC, ice_servers, render_room

# Join links and participant keys are checked by the routes themselves: a bad one is 403.
router = Router(tags=["video"], responses=problems(403))
KeyHeader = Annotated[str | None, Header(alias="X-Participant-Key", max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, pattern=NON_BLANK)]
SDP_MAX = 200_000
Sdp = Annotated[str, StringConstraints(min_length=10, max_length=SDP_MAX)]
# The join's body is its credential (the signed token): the longest offer, JSON-escaped, fits.
router.allow_larger("/api/v1/video/join", lambda: 2 * SDP_MAX + 16_384, uncredentialed=True)
# janus.js's requests to Janus (an SDP offer or answer at most) carry no Tongban credential: Janus
# checks the participant's VideoRoom token itself.
router.allow_larger("/video/janus", lambda: 2 * SDP_MAX + 16_384, uncredentialed=True)
router.allow_larger(r"/api/v1/video/rooms/[^/]+/stills/", lambda: get_settings().video_max_file_bytes)
router.allow_larger(r"/api/v1/video/rooms/[^/]+/messages", lambda: 64 * 1024)
JANUS_JS = Path("/usr/share/javascript/janus-gateway/janus.js")  # Debian libjs-janus-gateway
STILL_TYPES = {"image/jpeg": ".jpg", "image/png": ".png"}


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


class JoinBody(_Body):
    token: Annotated[str, StringConstraints(min_length=10, max_length=2000)]
    # The embedded backend needs the page's offer; with Janus the page negotiates with Janus.
    sdp: Sdp | None = None
    type: Literal["offer"] = "offer"


class RoomMessage(_Body):
    """What the embedded backend's data channel carries (video/messages.py): chat, file, chunk, end."""

    model_config = ConfigDict(extra="allow")
    t: Literal["chat", "file", "chunk", "end"]


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
    """One hub per application, created on the loop that serves it, of the configured backend."""
    hub = getattr(request.app.state, "video_hub", None)
    if hub is None:
        hub = request.app.state.video_hub = JanusHub() if backends.selected() == "janus" else Hub()
    return hub


def _janus_hub(hub: Hub) -> JanusHub:
    if not isinstance(hub, JanusHub):
        raise Conflict("此会议室的消息经 WebRTC 数据通道收发 (内置媒体后端)")
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
@router.post("/api/v1/video/join", response_model=Joined, responses=problems(503))
async def join_room(body: JoinBody, request: Request, session: SessionDep) -> Any:
    """凭入会链接加入会议 (SDP offer)"""
    claim = links.verify(body.token)
    engine = _engine(session)
    session.close()  # the hub works in its own short transactions
    hub = hub_of(request)
    if body.sdp is None and not isinstance(hub, JanusHub):
        raise InvalidInput("sdp", "须带页面的 SDP offer")
    out = await hub.join(engine, claim, body.sdp, body.type)  # type: ignore[arg-type]
    out["materials"] = await hub.db(engine, rooms.materials, claim.number)
    out["checklist"] = await hub.db(engine, kinds.checklist, out["kind"], claim.number)
    out["ice_servers"] = ice_servers(claim.room_id, claim.role, claim.expires_at)
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


@router.post("/api/v1/video/rooms/{room_id}/captures", status_code=201, response_model=Page,
             responses=problems(409))
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


@router.get("/api/v1/video/rooms/{room_id}/events", response_model=RoomEvents, responses=problems(409))
async def room_events(room_id: str, request: Request, key: KeyHeader = None,
                      after: Annotated[int, Query(ge=0)] = 0,
                      wait: Annotated[float, Query(ge=0, le=30)] = 20) -> Any:
    """会议室消息 (长轮询, Janus 后端)

    What the embedded backend sends over the data channel: the participant list, chat, files,
    still requests, the closing notice. Waits up to ``wait`` seconds for one after ``after``."""
    hub, room, peer = _participant(request, room_id, key)
    items, cursor = await _janus_hub(hub).events(peer, after, wait)
    return {"items": items, "next": cursor}


@router.post("/api/v1/video/rooms/{room_id}/messages", response_model=MessageReply, responses=problems(409))
async def room_message(room_id: str, body: RoomMessage, request: Request, key: KeyHeader = None) -> Any:
    """发送会议室消息 (文字交流、文件, Janus 后端)"""
    hub, room, peer = _participant(request, room_id, key)
    return {"reply": await _janus_hub(hub).message(room, peer, body.model_dump())}


@router.post("/api/v1/video/rooms/{room_id}/stills/{request_id}", status_code=201, response_model=Page,
             openapi_extra={"requestBody": {"required": True, "content": {
                 t: {"schema": {"type": "string", "format": "binary"}} for t in STILL_TYPES}}},
             responses=problems(404, 409, 413))
async def upload_still(room_id: str, request_id: str, request: Request, key: KeyHeader = None) -> Any:
    """上传工作人员要求的照片 (摄像头全分辨率, Janus 后端)

    The page's answer to a ``still_request`` event: the image as the raw body (JPEG or PNG),
    filed as a page of the material the clerk chose, validated like any upload."""
    janus_hub = _janus_hub(hub_of(request))  # the embedded backend captures on the server: 409 first
    _, room, peer = _participant(request, room_id, key)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in STILL_TYPES:
        raise InvalidInput("Content-Type", f"须为 {' / '.join(STILL_TYPES)}")
    limit, data = get_settings().video_max_file_bytes, bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise UploadTooLarge("body", "too_large", f"照片超过大小上限 {limit} 字节")
    name = f"视频拍照-{peer.name}-{now():%Y%m%d%H%M%S}{STILL_TYPES[kind]}"
    return page_view(room.number, await janus_hub.still(room, peer, request_id, bytes(data), name))


# -- the Janus HTTP API, same-origin for the page ------------------------------------------
_JANUS_PATH = re.compile(r"(/\d{1,20}){0,2}")


@router.api_route("/video/janus{rest:path}", methods=["GET", "POST"], include_in_schema=False)
async def janus_proxy(rest: str, request: Request, rid: int | None = None,
                      maxev: Annotated[int | None, Query(ge=1, le=10)] = None) -> Any:
    """janus.js talks to Janus through Tongban, so Janus listens on 127.0.0.1 only and the page
    needs no other origin. Only Janus's session and handle paths pass; Janus itself refuses a
    join without the participant's token and room management without the admin key."""
    if backends.selected() != "janus" or not _JANUS_PATH.fullmatch(rest):
        raise NotFound("没有这个媒体服务接口")
    hub = _janus_hub(hub_of(request))
    params = {"maxev": maxev} if maxev else {}
    if request.method == "GET":  # a long poll: Janus holds it up to 30 s
        upstream = hub.http().get(hub.url + rest, params=params, timeout=70)
    else:
        body = await request.body()
        _check_janus_request(body, hub.key)
        upstream = hub.http().post(hub.url + rest, content=body,
                                   headers={"Content-Type": "application/json"}, timeout=30)
    call = asyncio.ensure_future(upstream)
    gone = asyncio.ensure_future(_disconnected(request))
    await asyncio.wait({call, gone}, return_when=asyncio.FIRST_COMPLETED)
    gone.cancel()
    if not call.done():  # the page went away (closed, navigated): do not hold its poll open
        call.cancel()
        return Response(status_code=204)
    try:
        answer = call.result()
    except httpx.HTTPError as exc:
        raise Unavailable("媒体服务器 (Janus) 暂时无法连接") from exc
    return Response(answer.content, answer.status_code, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


# What a page needs of Janus: its session, one VideoRoom handle per feed, and in it joining,
# publishing and subscribing. Room management (create, edit, allowed, kick, destroy, forwarding,
# recording) is Tongban's, with the admin key and room secret; listing rooms or participants is
# nobody's business through here.
JANUS_VERBS = {"create", "attach", "message", "trickle", "keepalive", "detach", "hangup", "destroy"}
VIDEOROOM_REQUESTS = {"join", "joinandconfigure", "publish", "configure", "unpublish", "start", "pause",
                      "switch", "subscribe", "unsubscribe", "update", "leave"}


def _check_janus_request(body: bytes, key: str | None = None) -> None:
    try:
        msg = json.loads(body)
    except ValueError:
        raise InvalidInput("body", "须为 JSON 对象") from None
    if not isinstance(msg, dict) or msg.get("janus") not in JANUS_VERBS:
        raise Forbidden("不允许的媒体服务请求", missing=["janus_request"])
    if msg["janus"] == "attach" and msg.get("plugin") != "janus.plugin.videoroom":
        raise Forbidden("只能使用视频会议插件", missing=["janus_request"])
    if msg["janus"] == "message":
        inner = msg.get("body")
        if not isinstance(inner, dict) or inner.get("request") not in VIDEOROOM_REQUESTS:
            raise Forbidden("不允许的会议室请求", missing=["janus_request"])
        if {"record", "filename", "secret"} & set(inner):  # recordings are evidence: Tongban's alone
            raise Forbidden("录像设置只能由通办更改", missing=["janus_request"])
        if inner["request"] in {"join", "joinandconfigure"} and inner.get("ptype") != "subscriber":
            _check_publisher(inner, key)


def _check_publisher(join: dict[str, Any], key: str | None) -> None:
    """A page publishes only as the participant its token was issued to: the token is bound to the
    room and publisher id (video.backends.janus.participant_token), so recordings and the list name
    the right person and nobody takes another participant's place."""
    room, publisher, token = join.get("room"), join.get("id"), join.get("token")
    if not (isinstance(room, int) and isinstance(publisher, int) and isinstance(token, str)) \
            or isinstance(room, bool) or isinstance(publisher, bool):
        raise Forbidden("加入会议室须带通办签发的发布者编号与令牌", missing=["janus_publisher"])
    if not secrets.compare_digest(token, janus.participant_token(room, publisher, key)):
        raise Forbidden("发布者编号与入会令牌不符: 只能以通办为本参会者签发的编号加入", missing=["janus_publisher"])


async def _disconnected(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(0.25)


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
    path = JANUS_JS if name == "janus.js" else STATIC / name
    if name not in {"room.js", "room.css", "janus.js"} or not path.exists():
        raise NotFound(f"{name} 不存在")
    return FileResponse(path)
