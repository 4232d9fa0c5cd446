"""The room's data channel: chat into the case history, small files (chunked) into pages.

Messages are JSON text:
  {"t": "chat", "text": "…"}
  {"t": "file", "id": "f1", "name": "a.jpg", "size": 12345, "material": "floor_plans"}
  {"t": "chunk", "id": "f1", "data": "<base64>"}   (any number, in order)
  {"t": "end", "id": "f1"}
Replies: {"t": "error", "field", "reason"} or {"t": "file_result", "id", "ok", …}.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.clock import now
from core.settings import get_settings
from engine.errors import EngineError
from engine.scan_validation import UploadRefused, check_name
from video import rooms
from video.live import LiveRoom, Peer, RoomServices, Upload, send_all
from video.store import save_file

MAX_CHAT = 2000
MAX_UPLOADS = 4


def _error(field_: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"t": "error", "field": field_, "reason": reason, **extra}


async def handle(hub: RoomServices, room: LiveRoom, peer: Peer, raw: str | bytes) -> dict[str, Any] | None:
    if isinstance(raw, bytes):
        return _error("message", "只接受 JSON 文本消息")
    try:
        msg = json.loads(raw)
    except ValueError:
        return _error("message", "不是有效的 JSON")
    if not isinstance(msg, dict):
        return _error("message", "须为 JSON 对象")
    kind = msg.get("t")
    if kind == "chat":
        return await _chat(hub, room, peer, msg)
    if kind in ("file", "chunk", "end"):
        return await _file(hub, room, peer, msg)
    return _error("t", f"未知的消息类型 {kind!r}")


async def _chat(hub: RoomServices, room: LiveRoom, peer: Peer, msg: dict[str, Any]) -> dict[str, Any] | None:
    text = msg.get("text")
    if not isinstance(text, str) or not text.strip():
        return _error("text", "消息不能为空")
    if len(text) > MAX_CHAT:
        return _error("text", f"消息不能超过 {MAX_CHAT} 字")
    text = text.strip()
    await hub.db(room.engine, rooms.log, room.id, "video_chat", peer.actor,
                 {"participant": peer.id, "role": peer.role, "text": text})
    send_all(room, {"t": "chat", "from": peer.name, "role": peer.role, "participant": peer.id,
                         "text": text, "at": now().isoformat()})
    return None


async def _file(hub: RoomServices, room: LiveRoom, peer: Peer, msg: dict[str, Any]) -> dict[str, Any] | None:
    limit = get_settings().video_max_file_bytes
    fid = msg.get("id")
    if not isinstance(fid, str) or not fid or len(fid) > 64:
        return _error("id", "须为 1-64 字符的文件标识")
    if msg["t"] == "file":
        size, name, material = msg.get("size"), msg.get("name"), msg.get("material")
        if not isinstance(size, int) or size <= 0 or size > limit:
            return _error("size", f"文件大小须在 1 到 {limit} 字节之间", id=fid)
        if not isinstance(name, str) or not name.strip():
            return _error("name", "须给出文件名", id=fid)
        try:  # the same rules as any upload's name (engine.filenames), before a byte is taken
            name = check_name(name.strip(), "name")
        except UploadRefused as exc:
            return _error("name", exc.extra["errors"][0]["reason"], id=fid, code=exc.code)
        if not isinstance(material, str) or not material:
            return _error("material", "须选择材料", id=fid)
        if len(peer.uploads) >= MAX_UPLOADS:
            return _error("id", f"同时最多传送 {MAX_UPLOADS} 个文件", id=fid)
        peer.uploads[fid] = Upload(str(name), size, material)
        return {"t": "file_ready", "id": fid}
    upload = peer.uploads.get(fid)
    if upload is None:
        return _error("id", "没有进行中的此文件", id=fid)
    if msg["t"] == "chunk":
        try:
            part = base64.b64decode(msg.get("data") or "", validate=True)
        except (binascii.Error, ValueError):
            peer.uploads.pop(fid, None)
            return _error("data", "分块不是有效的 base64", id=fid)
        if len(upload.data) + len(part) > upload.size:
            peer.uploads.pop(fid, None)
            return _error("size", "收到的数据超过声明的文件大小", id=fid)
        upload.data += part
        return None
    peer.uploads.pop(fid, None)
    if len(upload.data) != upload.size:
        return _error("size", f"文件不完整: 收到 {len(upload.data)} / {upload.size} 字节", id=fid)
    try:
        page = await hub.db(room.engine, save_file, room.id, room.number, peer.actor, peer.id,
                            upload.material, bytes(upload.data), upload.name, hub.store)
    except EngineError as exc:
        errors = exc.extra.get("errors") or [{"field": "file", "reason": exc.detail}]
        return {"t": "file_result", "id": fid, "ok": False, **errors[0]}
    send_all(room, {"t": "file", "from": peer.name, "name": upload.name,
                         "material": upload.material})
    return {"t": "file_result", "id": fid, "ok": True, "page": page}
