"""A Python room participant on aiortc — what the tests and the benchmark join rooms with.

It speaks the same HTTP signalling and data-channel protocol as the browser page, views every
other publisher as they arrive, and counts the frames it receives from each.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from video.hub import rtc_config

CHUNK = 12 * 1024


@dataclass
class Received:
    frames: int = 0
    audio_frames: int = 0
    width: int = 0
    first_at: float | None = None
    last_at: float | None = None


class Participant:
    def __init__(self, base_url: str, token: str, tracks: list[MediaStreamTrack] | None = None,
                 view_others: bool = True) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        self.token, self.tracks, self.view_others = token, tracks or [], view_others
        self.pc = RTCPeerConnection(rtc_config())
        self.views: dict[str, RTCPeerConnection] = {}
        self.received: dict[str, Received] = {}
        self.messages: list[dict[str, Any]] = []
        self.people: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.connected = asyncio.Event()
        self.channel_open = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.offer_to_connected: float | None = None

    @property
    def key(self) -> str:
        return str(self.info["key"])

    @property
    def room(self) -> str:
        return str(self.info["room"])

    async def join(self) -> dict[str, Any]:
        for t in self.tracks:
            self.pc.addTrack(t)
        self.channel = self.pc.createDataChannel("room")
        self.channel.on("open", self.channel_open.set)
        self.channel.on("message", self._on_message)
        started = time.perf_counter()

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected":
                self.offer_to_connected = time.perf_counter() - started
                self.connected.set()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await self.http.post("/api/v1/video/join", json={
            "token": self.token, "sdp": self.pc.localDescription.sdp, "type": "offer"})
        if r.status_code != 200:
            await self.pc.close()
            raise JoinRefused(r.status_code, r.json())
        self.info = r.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(**self.info["answer"]))
        self._update_people(self.info["participants"])
        return self.info

    def _on_message(self, raw: str) -> None:
        msg = json.loads(raw)
        self.messages.append(msg)
        if msg.get("t") == "participants":
            self._update_people(msg["list"])

    def _update_people(self, people: list[dict[str, Any]]) -> None:
        self.people = people
        if not self.view_others or not self.info:
            return
        for p in people:
            if p["id"] != self.info["participant"] and p["id"] not in self.views and (p["video"] or p["audio"]):
                self.views[p["id"]] = RTCPeerConnection(rtc_config())
                self._tasks.append(asyncio.ensure_future(self._view(p)))

    async def _view(self, p: dict[str, Any]) -> None:
        pc = self.views[p["id"]]
        stats = self.received.setdefault(p["id"], Received())
        if p["video"]:
            pc.addTransceiver("video", direction="recvonly")
        if p["audio"]:
            pc.addTransceiver("audio", direction="recvonly")
        pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._count(track, stats))))
        await pc.setLocalDescription(await pc.createOffer())
        r = await self.http.post(f"/api/v1/video/rooms/{self.room}/views",
                                 headers={"X-Participant-Key": self.key},
                                 json={"publisher": p["id"], "sdp": pc.localDescription.sdp, "type": "offer"})
        if r.status_code == 200:
            await pc.setRemoteDescription(RTCSessionDescription(**r.json()))

    async def _count(self, track: MediaStreamTrack, stats: Received) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "audio":
                stats.audio_frames += 1
                continue
            stats.frames += 1
            stats.width = frame.width
            stats.last_at = time.perf_counter()
            stats.first_at = stats.first_at or stats.last_at

    async def chat(self, text: str) -> None:
        await asyncio.wait_for(self.channel_open.wait(), 10)
        self.channel.send(json.dumps({"t": "chat", "text": text}))

    async def send_file(self, fid: str, name: str, data: bytes, material: str) -> None:
        await asyncio.wait_for(self.channel_open.wait(), 10)
        self.channel.send(json.dumps({"t": "file", "id": fid, "name": name, "size": len(data),
                                      "material": material}))
        for i in range(0, len(data), CHUNK):
            while self.channel.bufferedAmount > 1_000_000:
                await asyncio.sleep(0.01)
            self.channel.send(json.dumps({"t": "chunk", "id": fid,
                                          "data": base64.b64encode(data[i:i + CHUNK]).decode()}))
        self.channel.send(json.dumps({"t": "end", "id": fid}))

    async def wait_message(self, kind: str, timeout: float = 15, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages:
                if m.get("t") == kind and all(m.get(k) == v for k, v in match.items()):
                    return m
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {kind} message {match}; got {self.messages}")

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post(f"/api/v1/video/rooms/{self.room}/{path}", json=body or {},
                                    headers={"X-Participant-Key": self.key})

    async def close(self, leave: bool = True) -> None:
        if leave and self.info:
            with contextlib.suppress(httpx.HTTPError):
                await self.post("leave")
        for t in self._tasks:
            t.cancel()
        for pc in [*self.views.values(), self.pc]:
            await pc.close()
        for t in self.tracks:
            t.stop()
        await self.http.aclose()


class JoinRefused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('detail')}")
        self.status, self.body = status, body


async def wait_until(pred: Any, timeout: float = 20, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


@dataclass
class RoomSetup:
    """Tokens for one room, as a test or the benchmark prepares them."""

    room: str
    tokens: dict[str, str] = field(default_factory=dict)


class JanusPeer:
    """An aiortc participant of a room on the ``janus`` backend: it joins through Tongban (the
    join link), then publishes and subscribes in Janus through the same-origin proxy, as the
    page does with janus.js, and polls the room's messages from Tongban."""

    def __init__(self, base_url: str, token: str, tracks: list[MediaStreamTrack] | None = None,
                 view_others: bool = True, janus_url: str | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=40)
        self.base, self.token, self.tracks, self.view_others = base_url, token, tracks or [], view_others
        self.janus_url = janus_url
        self.pc = RTCPeerConnection(rtc_config())
        self.views: dict[int, RTCPeerConnection] = {}
        self.received: dict[str, Received] = {}
        self.messages: list[dict[str, Any]] = []
        self.people: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.feeds: set[int] = set()
        self.connected = asyncio.Event()
        self.join_to_first_frame: float | None = None
        self._events: dict[int, list[dict[str, Any]]] = {}
        self._subs: dict[int, RTCPeerConnection] = {}  # subscriber handle → its connection
        self.session: int | None = None
        self.pub: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0

    key = Participant.key
    room = Participant.room
    post = Participant.post
    wait_message = Participant.wait_message

    # -- Janus's HTTP API (one session, long-polled) -------------------------------------------
    def _url(self, *parts: int) -> str:
        root = self.janus_url or self.base + self.info["janus"]["path"]
        return "/".join([root, *map(str, parts)])

    async def _janus(self, body: dict[str, Any], *parts: int) -> dict[str, Any]:
        r = await self.http.post(self._url(*parts), json={**body, "transaction": f"t{time.monotonic_ns()}"})
        answer = r.json()
        if answer.get("janus") == "error":
            raise RuntimeError(f"Janus: {answer['error']}")
        return answer

    async def _poll(self) -> None:
        while True:
            try:
                r = await self.http.get(self._url(self.session), params={"maxev": 10}, timeout=70)
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
                continue
            events = r.json()
            for ev in events if isinstance(events, list) else [events]:
                handle = ev.get("sender")
                if ev.get("janus") == "trickle" and handle in self._pcs():
                    cand = ev.get("candidate") or {}
                    # Before the answer is set its SDP carries Janus's candidates anyway.
                    if cand.get("candidate") and self._pcs()[handle].remoteDescription is not None:
                        ice = candidate_from_sdp(cand["candidate"].removeprefix("candidate:"))
                        ice.sdpMid, ice.sdpMLineIndex = cand.get("sdpMid"), cand.get("sdpMLineIndex")
                        await self._pcs()[handle].addIceCandidate(ice)
                    continue
                if handle is not None:
                    self._events.setdefault(handle, []).append(ev)
                    data = (ev.get("plugindata") or {}).get("data") or {}
                    if handle == self.pub:
                        self._on_publishers(data)

    def _pcs(self) -> dict[int, RTCPeerConnection]:
        return {**self._subs, **({self.pub: self.pc} if self.pub is not None else {})}

    async def _event(self, handle: int, pred: Any, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            events = self._events.get(handle, [])
            for ev in events[seen:]:
                data = (ev.get("plugindata") or {}).get("data") or {}
                if "error_code" in data:
                    raise RuntimeError(f"Janus: {data}")
                if pred(data, ev.get("jsep")):
                    return ev
            seen = len(events)
            await asyncio.sleep(0.02)
        raise TimeoutError(f"Janus did not answer on handle {handle}")

    async def _attach(self) -> int:
        answer = await self._janus({"janus": "attach", "plugin": "janus.plugin.videoroom"}, self.session)
        return int(answer["data"]["id"])

    # -- joining, publishing, subscribing ------------------------------------------------------
    async def join(self) -> dict[str, Any]:
        self._started = time.perf_counter()
        r = await self.http.post("/api/v1/video/join", json={"token": self.token})
        if r.status_code != 200:
            raise JoinRefused(r.status_code, r.json())
        self.info = r.json()
        self.people = self.info["participants"]
        j = self.info["janus"]
        self.session = int((await self._janus({"janus": "create"}))["data"]["id"])
        self._tasks.append(asyncio.ensure_future(self._poll()))
        self._tasks.append(asyncio.ensure_future(self._room_events()))
        self.pub = await self._attach()
        await self._janus({"janus": "message", "body": {
            "request": "join", "ptype": "publisher", "room": j["room"], "id": j["publisher"],
            "display": self.info["name"], "token": j["token"]}}, self.session, self.pub)
        joined = await self._event(self.pub, lambda d, _: d.get("videoroom") == "joined")
        for t in self.tracks:
            self.pc.addTrack(t)

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

        if self.tracks:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await self._janus({"janus": "message", "body": {"request": "publish", "audio": True, "video": True},
                               "jsep": {"type": "offer", "sdp": self.pc.localDescription.sdp}},
                              self.session, self.pub)
            ev = await self._event(self.pub, lambda d, jsep: bool(jsep) and jsep.get("type") == "answer")
            await self.pc.setRemoteDescription(RTCSessionDescription(ev["jsep"]["sdp"], "answer"))
        self._on_publishers((joined.get("plugindata") or {}).get("data") or {})
        return self.info

    def _on_publishers(self, data: dict[str, Any]) -> None:
        new = [int(p["id"]) for p in data.get("publishers") or []]
        for feed in new:
            if feed not in self.feeds and self.view_others:
                self.feeds.add(feed)
                self._tasks.append(asyncio.ensure_future(self._subscribe(feed)))

    def participant_of(self, feed: int) -> str:
        return next((p["id"] for p in self.people if p.get("feed") == feed), str(feed))

    async def _subscribe(self, feed: int) -> None:
        j = self.info["janus"]
        handle = await self._attach()
        pc = self._subs[handle] = self.views[feed] = RTCPeerConnection(rtc_config())
        pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._count(track, feed))))
        await self._janus({"janus": "message", "body": {
            "request": "join", "ptype": "subscriber", "room": j["room"], "streams": [{"feed": feed}],
            "token": j["token"]}}, self.session, handle)
        ev = await self._event(handle, lambda d, jsep: bool(jsep) and jsep.get("type") == "offer")
        await pc.setRemoteDescription(RTCSessionDescription(ev["jsep"]["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self._janus({"janus": "message", "body": {"request": "start", "room": j["room"]},
                           "jsep": {"type": "answer", "sdp": pc.localDescription.sdp}}, self.session, handle)

    async def _count(self, track: MediaStreamTrack, feed: int) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            stats = self.received.setdefault(self.participant_of(feed), Received())
            if track.kind == "audio":
                stats.audio_frames += 1
                continue
            stats.frames += 1
            stats.width = frame.width
            stats.last_at = time.perf_counter()
            if stats.first_at is None:
                stats.first_at = stats.last_at
                self.join_to_first_frame = self.join_to_first_frame or stats.first_at - self._started

    async def _room_events(self) -> None:
        after = 0
        while True:
            r = await self.http.get(f"/api/v1/video/rooms/{self.room}/events",
                                    params={"after": after, "wait": 20}, headers={"X-Participant-Key": self.key})
            if r.status_code != 200:
                return
            out = r.json()
            for m in out["items"]:
                self.messages.append(m)
                if m.get("t") == "participants":
                    self.people = m["list"]
            after = out["next"]

    async def chat(self, text: str) -> None:
        r = await self.post("messages", {"t": "chat", "text": text})
        r.raise_for_status()

    async def close(self, leave: bool = True) -> None:
        if leave and self.info:
            with contextlib.suppress(httpx.HTTPError):
                await self.post("leave")
        for t in self._tasks:
            t.cancel()
        if self.session is not None:
            with contextlib.suppress(httpx.HTTPError, RuntimeError, ValueError):
                await self._janus({"janus": "destroy"}, self.session)
        for pc in [*self.views.values(), self.pc]:
            await pc.close()
        for t in self.tracks:
            t.stop()
        await self.http.aclose()
