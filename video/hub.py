"""Live rooms of this process: peer connections, the relay, recorders and room messages.

Every participant has one *publishing* connection (their camera and microphone up, the room's
data channel) and one *viewing* connection per other publisher (that publisher's relayed
tracks down). All offers come from the browser or peer, so signalling is plain HTTP POSTs:
the server never has to renegotiate. The data channel tells a participant who is in the room.
Database work runs in worker threads so the event loop keeps relaying media.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from core.clock import now
from core.settings import get_settings
from engine.actors import Actor
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleVersion
from storage.db import session_scope
from storage.objects import ObjectStore
from video import messages, rooms
from video.capture import grab_jpeg
from video.frames import CopyTrack
from video.links import JoinClaim
from video.live import LiveRoom, Peer, send, send_all
from video.recorder import Recorder
from video.store import save_capture, save_recording

log = logging.getLogger("tongban.video")
T = TypeVar("T")
CAPTURE_ROLES = {"approver", "clerk"}
CLOSE_GRACE = 0.3


def rtc_config() -> RTCConfiguration:
    # No STUN: the default Google server stalls ICE gathering on offline machines.
    return RTCConfiguration(iceServers=[])


class Hub:
    def __init__(self, store: ObjectStore | None = None, *, idle_seconds: float | None = None,
                 watch_seconds: float | None = None) -> None:
        s = get_settings()
        self.store = store  # None: the configured store (engine.scans decides)
        self.idle_seconds = s.video_idle_seconds if idle_seconds is None else idle_seconds
        self.watch_seconds = s.video_watch_seconds if watch_seconds is None else watch_seconds
        self.rooms: dict[str, LiveRoom] = {}
        self.engine: sa.Engine | None = None
        self._watcher: asyncio.Task[None] | None = None

    # -- database work off the loop --------------------------------------------------------
    async def db(self, engine: sa.Engine, fn: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            for attempt in range(5):
                try:
                    with session_scope(engine) as s:
                        return fn(s, *args)
                except StaleVersion:
                    # Room events share the case's version with clerks; retry on a fresh read.
                    if attempt == 4:
                        raise
                    time.sleep(0.02 * (attempt + 1))
            raise AssertionError("unreachable")

        return await asyncio.to_thread(run)

    def live(self, room_id: str) -> LiveRoom:
        room = self.rooms.get(room_id)
        if room is None or room.closed:
            raise NotFound("会议室当前没有进行中的会议")
        return room

    # -- joining ---------------------------------------------------------------------------
    async def _admit(self, engine: sa.Engine, claim: JoinClaim) -> dict[str, Any]:
        """The engine's admission of a join link (both backends); a room whose state was left closes."""
        self.engine = engine
        self._ensure_watcher()
        try:
            return await self.db(engine, rooms.admit, claim)
        except Forbidden as exc:
            if exc.extra.get("reason") == "state_left":
                await self.close(claim.room_id, "state_left")
            raise

    async def join(self, engine: sa.Engine, claim: JoinClaim, sdp: str, type_: str) -> dict[str, Any]:
        row = await self._admit(engine, claim)
        if "\nm=application" not in "\n" + sdp.replace("\r\n", "\n"):
            raise InvalidInput("sdp", "offer 须包含会议室的数据通道 (m=application)")
        room = self.rooms.get(row["id"])
        if room is None or room.closed:
            room = self.rooms[row["id"]] = LiveRoom(row["id"], row["number"], row["state"],
                                                    row["kind"], engine)
        pc = RTCPeerConnection(rtc_config())
        peer_tracks: dict[str, MediaStreamTrack] = {}
        channel_box: list[RTCDataChannel] = []
        pc.on("track", lambda track: peer_tracks.setdefault(track.kind, track))
        pc.on("datachannel", lambda ch: channel_box.append(ch))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type_))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds on a bad offer
            await pc.close()
            raise InvalidInput("sdp", f"无法使用的 SDP offer: {exc}") from exc
        try:
            pid, actor = await self.db(engine, rooms.record_join, row, claim)
        except BaseException:
            await pc.close()
            raise
        peer = Peer(pid, claim.role, claim.name, claim.clerk_id, actor, secrets.token_urlsafe(24),
                    pc, peer_tracks)
        room.peers[pid] = peer
        if channel_box:
            self._attach_channel(room, peer, channel_box[0])
        pc.on("datachannel", lambda ch: self._attach_channel(room, peer, ch))

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.leave(room, peer, "connection_" + pc.connectionState)

        self._start_recording(room, peer)
        self._broadcast_participants(room)
        return {"room": row["id"], "number": row["number"], "kind": row["kind"],
                "participant": pid, "key": peer.key, "role": claim.role, "name": claim.name,
                "answer": {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type},
                "participants": [p.public() for p in room.peers.values() if not p.left]}

    def _start_recording(self, room: LiveRoom, peer: Peer) -> None:
        if not peer.tracks or not room.number:  # recordings are case evidence; 视频帮办 has no case
            return
        tmp = get_settings().data_dir / "video-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        # The recorder reads through the relay (buffered: evidence should not skip frames).
        tracks = [room.relay.subscribe(t) for t in peer.tracks.values()]
        peer.recorder = Recorder(tmp / f"{room.id}-{peer.id}.mp4", tracks)
        peer.recording_since = now()
        peer.recorder.start()

    async def view(self, room: LiveRoom, viewer: Peer, publisher_id: str, sdp: str,
                   type_: str) -> dict[str, str]:
        """Answer the viewer's receive-only offer with the publisher's relayed tracks."""
        pub = room.peers.get(publisher_id)
        if pub is None or pub.left:
            raise NotFound(f"参会者 {publisher_id} 不在会议室中")
        if pub.id == viewer.id:
            raise InvalidInput("publisher", "不能订阅自己的画面")
        old = viewer.views.pop(pub.id, None)
        if old is not None:
            await old.close()
        pc = RTCPeerConnection(rtc_config())
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type_))
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds on a bad offer
            await pc.close()
            raise InvalidInput("sdp", f"无法使用的 SDP offer: {exc}") from exc
        for track in pub.tracks.values():
            pc.addTrack(CopyTrack(room.relay.subscribe(track, buffered=False)))
        await pc.setLocalDescription(await pc.createAnswer())
        viewer.views[pub.id] = pc
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    # -- leaving and closing ---------------------------------------------------------------
    async def leave(self, room: LiveRoom, peer: Peer, reason: str) -> None:
        if peer.left:
            return
        peer.left = True
        for other in room.peers.values():
            pc = other.views.pop(peer.id, None)
            if pc is not None:
                await pc.close()
        for pc in peer.views.values():
            await pc.close()
        peer.views.clear()
        if peer.pc is not None:
            await peer.pc.close()
        await self._finish_recording(room, peer)
        try:
            await self.db(room.engine, rooms.record_leave, room.id, peer.id, peer.actor, reason)
        except Exception:  # noqa: BLE001 - a leave must never fail the room; keep going, say so
            log.exception("video: recording leave of %s failed", peer.id)
        if not any(not p.left for p in room.peers.values()):
            room.idle_since = time.monotonic()
        self._broadcast_participants(room)

    async def _finish_recording(self, room: LiveRoom, peer: Peer) -> None:
        if peer.recorder is None:
            return
        recorder, since = peer.recorder, peer.recording_since or now()
        peer.recorder = None
        result = await recorder.stop()
        if result is None:
            return
        try:
            await self.db(room.engine, save_recording, room.id, peer.id, peer.actor, result,
                          since, now(), self.store)
        except Exception:  # noqa: BLE001 - keep the file for a retry by hand, and say where it is
            log.exception("video: storing recording %s failed; file kept", result.path)
            return
        result.path.unlink(missing_ok=True)

    async def close(self, room_id: str, reason: str, actor: Actor | None = None) -> None:
        """Close in the database first (no one else gets in), then tell everybody and hang up."""
        room = self.rooms.get(room_id)
        engine = room.engine if room is not None else self.engine
        if engine is not None:
            await self.db(engine, rooms.close, room_id, reason, actor)
        if room is None or room.closed:
            return
        room.closed = True
        send_all(room, {"t": "closed", "reason": reason})
        if any(not p.left for p in room.peers.values()):
            await asyncio.sleep(CLOSE_GRACE)  # let the notice leave before the transports go
        for peer in list(room.peers.values()):
            await self.leave(room, peer, "room_closed")
        self.rooms.pop(room_id, None)

    async def shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for room_id in list(self.rooms):
            await self.close(room_id, "shutdown")

    # -- in-room actions -------------------------------------------------------------------
    async def capture(self, room: LiveRoom, requester: Peer, target_id: str,
                      material_id: str) -> dict[str, Any]:
        if requester.role not in CAPTURE_ROLES:
            raise Forbidden("只有远程审批人员或窗口工作人员可以拍照存档", missing=["role:approver|clerk"])
        known = await self.db(room.engine, rooms.materials, room.number)
        if material_id not in {m["id"] for m in known}:
            raise InvalidInput("material_id", f"事项没有材料 '{material_id}'")
        target = room.peers.get(target_id)
        if target is None or target.left:
            raise InvalidInput("participant", f"参会者 {target_id} 不在会议室中")
        if "video" not in target.tracks:
            raise Conflict(f"{target.name} 没有视频画面")
        jpeg = await grab_jpeg(room.relay.subscribe(target.tracks["video"], buffered=False))
        name = f"视频拍照-{target.name}-{now():%Y%m%d%H%M%S}.jpg"
        page = await self.db(room.engine, save_capture, room.id, room.number, requester.actor,
                             target.id, material_id, jpeg, name, self.store)
        send_all(room, {"t": "capture", "by": requester.name, "of": target.name,
                              "material": material_id, "sha256": page.get("sha256")})
        return page

    def _attach_channel(self, room: LiveRoom, peer: Peer, channel: RTCDataChannel) -> None:
        if peer.channel is channel:
            return
        peer.channel = channel

        @channel.on("message")
        def _message(raw: str | bytes) -> None:
            asyncio.ensure_future(self._on_message(room, peer, raw))

        send(peer, {"t": "participants", "you": peer.id,
                          "list": [p.public() for p in room.peers.values() if not p.left]})

    async def _on_message(self, room: LiveRoom, peer: Peer, raw: str | bytes) -> None:
        if room.closed or peer.left:
            return
        reply = await messages.handle(self, room, peer, raw)
        if reply is not None:
            send(peer, reply)

    # -- fan-out ---------------------------------------------------------------------------
    def _broadcast_participants(self, room: LiveRoom) -> None:
        listing = [p.public() for p in room.peers.values() if not p.left]
        for p in room.peers.values():
            send(p, {"t": "participants", "you": p.id, "list": listing})

    # -- closing rooms whose case moved on, and idle ones -------------------------------------
    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_seconds)
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - the watcher must outlive one bad sweep
                log.exception("video: sweep failed")

    async def sweep(self) -> None:
        for room in list(self.rooms.values()):
            reason = await self.db(room.engine, rooms.still_valid, room.id)
            empty = not any(not p.left for p in room.peers.values())
            if reason is None and empty and time.monotonic() - room.idle_since > self.idle_seconds:
                reason = "idle"
            if reason is not None:
                await self.close(room.id, "ended" if reason == "closed" else reason)
        if self.engine is not None:
            # Rooms nobody joined (or everybody left) close after the idle timeout too.
            cutoff = datetime.fromtimestamp(now().timestamp() - self.idle_seconds, UTC)
            for room_id in await self.db(self.engine, rooms.idle_rooms, cutoff):
                if room_id not in self.rooms:
                    await self.db(self.engine, rooms.close, room_id, "idle", None)
