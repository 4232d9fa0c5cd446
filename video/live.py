"""A live room of this process and its peers, and how to send them a message over the data channel.

Shared by the hub (peer connections, relay, recorders) and the room messages (chat, files), so
neither imports the other.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from engine.actors import Actor
from engine.errors import Forbidden
from storage.objects import ObjectStore
from video.recorder import Recorder

T = TypeVar("T")


class RoomServices(Protocol):
    """What room messages need from the hub: database work off the loop, and the object store."""

    store: ObjectStore | None

    async def db(self, engine: sa.Engine, fn: Callable[..., T], *args: Any) -> T: ...


@dataclass
class Upload:
    name: str
    size: int
    material: str
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Peer:
    id: str
    role: str
    name: str
    clerk_id: int | None
    actor: Actor
    key: str
    pc: RTCPeerConnection | None  # None: the media go through Janus (video/janus_hub.py)
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)
    channel: RTCDataChannel | None = None
    views: dict[str, RTCPeerConnection] = field(default_factory=dict)  # publisher id → pc
    recorder: Recorder | None = None
    recording_since: datetime | None = None
    uploads: dict[str, Upload] = field(default_factory=dict)
    left: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role,
                "video": "video" in self.tracks, "audio": "audio" in self.tracks}


@dataclass
class LiveRoom:
    id: str
    number: str
    state: str
    kind: str
    engine: sa.Engine
    relay: MediaRelay = field(default_factory=MediaRelay)
    peers: dict[str, Peer] = field(default_factory=dict)
    idle_since: float = field(default_factory=time.monotonic)
    closed: bool = False

    def by_key(self, key: str | None) -> Peer:
        peer = next((p for p in self.peers.values()
                     if key and secrets.compare_digest(p.key, key)), None)
        if peer is None or peer.left:
            raise Forbidden("参会凭证无效或已离开会议室", missing=["participant_key"])
        return peer


def send(peer: Peer, msg: dict[str, Any]) -> None:
    ch = peer.channel
    if ch is not None and ch.readyState == "open" and not peer.left:
        ch.send(json.dumps(msg, ensure_ascii=False, default=str))


def send_all(room: LiveRoom, msg: dict[str, Any]) -> None:
    for p in room.peers.values():
        send(p, msg)
