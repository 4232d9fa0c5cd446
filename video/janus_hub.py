"""The room hub of the ``janus`` backend: Janus carries the media, Tongban everything else.

The same room model and routes as the embedded hub (video/hub.py): the join link is checked
here, the participant is recorded in the case history, and only then is the participant's own
VideoRoom token (derived from their participant key) added to the room's ``allowed`` list, so
Janus admits nobody Tongban has not. The page publishes and subscribes with janus.js through
Tongban's same-origin proxy to Janus's HTTP API (api/routes/video.py); Janus records every
publisher. Chat, files, the participant list, still requests and the closing notice, which the
embedded hub sends over each peer's data channel, go here through a per-participant event
queue (``EventChannel``) that the page long-polls — so video/messages.py serves both backends
unchanged. At close the room is destroyed in Janus and the recording job (queued with the close
in the same transaction, video/rooms.py) converts and stores the recordings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from core.clock import now
from core.settings import get_settings
from engine.actors import Actor
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from storage.objects import ObjectStore
from video import rooms
from video.backends import janus
from video.hub import CAPTURE_ROLES, Hub
from video.links import JoinClaim
from video.live import LiveRoom, Peer, send, send_all
from video.store import save_capture

log = logging.getLogger("tongban.video")
QUEUE_KEEP = 500  # events kept per participant: a page that polls late still gets the recent ones
STILL_SECONDS = 20.0  # how long a clerk's still request waits for the participant's page


class EventChannel:
    """Stands in for a peer's data channel: what ``video.live.send`` writes, the page long-polls."""

    readyState = "open"

    def __init__(self) -> None:
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.next = 1
        self._waiters: list[asyncio.Future[None]] = []
        self.polls = 0  # long polls waiting now
        self.last_poll = time.monotonic()  # when the page last polled (joining counts as one)

    def quiet_for(self) -> float:
        """Seconds since the page's last poll ended (0 while one is waiting): how long it has been gone."""
        return 0.0 if self.polls else time.monotonic() - self.last_poll

    def send(self, text: str) -> None:
        self.events.append((self.next, json.loads(text)))
        self.next += 1
        del self.events[:-QUEUE_KEEP]
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
        self._waiters.clear()

    async def after(self, seq: int, timeout: float) -> tuple[list[dict[str, Any]], int]:
        """Events numbered above ``seq`` (waiting up to ``timeout`` for one), and the next cursor."""
        self.polls += 1
        try:
            if not any(n > seq for n, _ in self.events):
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, timeout)
        finally:
            self.polls -= 1
            self.last_poll = time.monotonic()
        items = [{"seq": n, **e} for n, e in self.events if n > seq]
        return items, (items[-1]["seq"] if items else seq)

    def close(self) -> None:
        self.readyState = "closed"
        for w in self._waiters:
            if not w.done():
                w.set_result(None)


@dataclass
class StillRequest:
    id: str
    target: str
    material_id: str
    requester: Actor
    answer: asyncio.Future[dict[str, Any]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class JanusHub(Hub):
    """``TONGBAN_VIDEO_BACKEND=janus``: rooms in Janus VideoRoom, the rest as with the embedded hub."""

    backend = "janus"

    def __init__(self, store: ObjectStore | None = None, *, url: str | None = None, key: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self.url = url or get_settings().janus_url
        self.key = key
        self.stills: dict[str, StillRequest] = {}
        self._http: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        """The proxy's connection pool to Janus (api/routes/video.py), made on the serving loop."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200))
        return self._http

    def _api(self) -> janus.VideoRoomAPI:
        return janus.VideoRoomAPI(self.url, self.key)

    async def _janus(self, fn: Any, *args: Any) -> Any:
        """A control request to Janus (blocking HTTP) off the loop, on a session of its own."""
        def run() -> Any:
            api = self._api()
            try:
                return fn(api, *args)
            finally:
                api.close()

        try:
            return await asyncio.to_thread(run)
        except httpx.HTTPError as exc:
            raise Unavailable("媒体服务器 (Janus) 暂时无法连接") from exc
        except janus.JanusError as exc:
            raise Unavailable(f"媒体服务器 (Janus) 拒绝了请求: {exc.reason}") from exc

    async def join(self, engine: sa.Engine, claim: JoinClaim, sdp: str | None, type_: str) -> dict[str, Any]:
        row = await self._admit(engine, claim)
        if sdp:
            raise InvalidInput("sdp", "Janus 会议室的音视频由页面直接与媒体服务器协商, 加入时不带 SDP")
        room = self.rooms.get(row["id"])
        if room is None or room.closed:
            room = self.rooms[row["id"]] = LiveRoom(row["id"], row["number"], row["state"], row["kind"], engine)
        rec_dir = janus.recordings_dir(row["id"])
        number = await self._janus(lambda api: api.ensure_room(row["id"], rec_dir=rec_dir))
        pid, actor = await self.db(engine, rooms.record_join, row, claim)
        peer = Peer(pid, claim.role, claim.name, claim.clerk_id, actor, secrets.token_urlsafe(24), None)
        # Janus carries the media: the list shows everyone as publishing camera and microphone.
        peer.tracks = {"video": None, "audio": None}  # type: ignore[dict-item]
        peer.channel = EventChannel()  # type: ignore[assignment]
        token = janus.participant_token(number, janus.publisher_number(pid), self.key)
        try:
            await self._janus(lambda api: api.allow(number, janus.room_secret(row["id"]), [token]))
        except Exception:
            # Not let into Janus: the history must not show them in the room for good.
            await self.db(engine, rooms.record_leave, row["id"], pid, actor, "media_refused")
            raise
        peer.recording_since = now()
        room.peers[pid] = peer
        self._broadcast_participants(room)
        return {"room": row["id"], "number": row["number"], "kind": row["kind"],
                "participant": pid, "key": peer.key, "role": claim.role, "name": claim.name,
                "answer": None,
                "janus": {"path": "/video/janus", "room": number, "token": token,
                          "publisher": janus.publisher_number(pid)},
                "participants": [self._public(p) for p in room.peers.values() if not p.left]}

    @staticmethod
    def _public(p: Peer) -> dict[str, Any]:
        return {**p.public(), "feed": janus.publisher_number(p.id)}

    def _broadcast_participants(self, room: LiveRoom) -> None:
        listing = [self._public(p) for p in room.peers.values() if not p.left]
        for p in room.peers.values():
            send(p, {"t": "participants", "you": p.id, "list": listing})

    async def view(self, room: LiveRoom, viewer: Peer, publisher_id: str, sdp: str, type_: str) -> dict[str, str]:
        raise Conflict("Janus 会议室的画面由页面向媒体服务器订阅")

    async def events(self, peer: Peer, after: int, timeout: float) -> tuple[list[dict[str, Any]], int]:
        channel = peer.channel
        assert isinstance(channel, EventChannel)
        return await channel.after(after, timeout)

    async def message(self, room: LiveRoom, peer: Peer, msg: dict[str, Any]) -> dict[str, Any] | None:
        """What the embedded hub gets over the data channel, here as one POST (video/messages.py)."""
        from video import messages

        if room.closed or peer.left:
            raise Forbidden("会议室已关闭", missing=["room_open"])
        return await messages.handle(self, room, peer, json.dumps(msg, ensure_ascii=False))

    async def leave(self, room: LiveRoom, peer: Peer, reason: str) -> None:
        if peer.left:
            return
        peer.left = True
        for still in [s for s in self.stills.values() if s.target == peer.id]:
            if not still.answer.done():
                still.answer.set_exception(Conflict(f"{peer.name} 已离开会议室, 未能拍照"))
        try:
            await self.db(room.engine, rooms.record_leave, room.id, peer.id, peer.actor, reason)
        except Exception:  # noqa: BLE001 - a leave must never fail the room; keep going, say so
            log.exception("video: recording leave of %s failed", peer.id)
        try:  # their token no longer opens the room, and their handle and feeds go
            await self._janus(self._revoke, room.id, peer.id)
        except Exception:  # noqa: BLE001 - Janus down: closing the room destroys it (and the token)
            log.exception("video: revoking the Janus token of %s failed", peer.id)
        if not any(not p.left for p in room.peers.values()):
            room.idle_since = time.monotonic()
        self._broadcast_participants(room)
        if isinstance(peer.channel, EventChannel):
            peer.channel.close()

    def _revoke(self, api: janus.VideoRoomAPI, room_id: str, pid: str) -> None:
        number, publisher, secret = janus.room_number(room_id), janus.publisher_number(pid), janus.room_secret(room_id)
        try:
            api.disallow(number, secret, [janus.participant_token(number, publisher, self.key)])
        except janus.JanusError as exc:
            if exc.code != 426:  # JANUS_VIDEOROOM_ERROR_NO_SUCH_ROOM: destroyed already, nothing to revoke
                raise
            return
        api.kick(number, secret, publisher)

    async def sweep(self) -> None:
        """Participants whose page stopped polling the room's events (tab closed, network gone)
        are marked left, so a room they all left idle-closes; then the embedded hub's sweep."""
        gone_after = get_settings().janus_gone_seconds
        for room in list(self.rooms.values()):
            for peer in list(room.peers.values()):
                channel = peer.channel
                if not peer.left and isinstance(channel, EventChannel) and channel.quiet_for() > gone_after:
                    await self.leave(room, peer, "gone")
        await super().sweep()

    async def shutdown(self) -> None:
        await super().shutdown()
        if self._http is not None:
            await self._http.aclose()

    async def close(self, room_id: str, reason: str, actor: Actor | None = None) -> None:
        room = self.rooms.get(room_id)
        await super().close(room_id, reason, actor)
        if room is not None:
            try:  # the job destroys it too if this fails: its recordings close either way
                await self._janus(lambda api: api.close_room(room_id))
            except Exception:  # noqa: BLE001 - Janus down: the room is closed in Tongban all the same
                log.exception("video: destroying Janus room of %s failed", room_id)
            if not room.number:  # 视频帮办: no case to keep Janus's recordings as evidence of
                shutil.rmtree(janus.recordings_dir(room_id), ignore_errors=True)

    # -- stills from the participant's own camera --------------------------------------------
    async def capture(self, room: LiveRoom, requester: Peer, target_id: str, material_id: str) -> dict[str, Any]:
        """Ask the participant's page for a full-resolution still; it uploads it (``still``)."""
        if requester.role not in CAPTURE_ROLES:
            raise Forbidden("只有远程审批人员或窗口工作人员可以拍照存档", missing=["role:approver|clerk"])
        known = await self.db(room.engine, rooms.materials, room.number)
        if material_id not in {m["id"] for m in known}:
            raise InvalidInput("material_id", f"事项没有材料 '{material_id}'")
        target = room.peers.get(target_id)
        if target is None or target.left:
            raise InvalidInput("participant", f"参会者 {target_id} 不在会议室中")
        still = StillRequest(secrets.token_hex(8), target.id, material_id, requester.actor)
        self.stills[still.id] = still
        send(target, {"t": "still_request", "id": still.id, "material": material_id, "by": requester.name})
        try:
            page = await asyncio.wait_for(asyncio.shield(still.answer), STILL_SECONDS)
        except TimeoutError as exc:
            raise Conflict(f"{target.name} 的页面未在 {int(STILL_SECONDS)} 秒内传回照片") from exc
        finally:
            self.stills.pop(still.id, None)
        send_all(room, {"t": "capture", "by": requester.name, "of": target.name,
                        "material": material_id, "sha256": page.get("sha256")})
        return page

    async def still(self, room: LiveRoom, peer: Peer, request_id: str, data: bytes, name: str) -> dict[str, Any]:
        """The page's answer to a still request: validated and filed like any upload."""
        still = self.stills.get(request_id)
        if still is None or still.target != peer.id or still.answer.done():
            raise NotFound("没有待完成的拍照请求")
        try:
            page = await self.db(room.engine, save_capture, room.id, room.number, still.requester,
                                 peer.id, still.material_id, data, name, self.store)
        except Exception as exc:
            still.answer.set_exception(exc)
            still.answer.exception()  # retrieved here: the clerk's request may have timed out
            raise
        still.answer.set_result(page)
        return page
