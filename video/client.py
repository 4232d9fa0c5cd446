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
