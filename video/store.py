"""What a room leaves on its case: recordings as evidence, captured stills and files as pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.actors import Actor
from engine.advance import load_case
from storage.objects import ObjectStore
from storage.video_tables import VideoRecording
from video import evidence, rooms
from video.recorder import RecordingResult


def save_recording(session: Session, room_id: str, participant_id: str, actor: Actor,
                   result: RecordingResult, started: datetime, ended: datetime,
                   store: ObjectStore | None = None, content_type: str = "video/mp4") -> dict[str, Any]:
    room = rooms.describe_row(session, room_id)
    case = load_case(session, room["number"])
    meta = {"room": room_id, "participant": participant_id, "duration_s": result.duration_s,
            "sha256": result.sha256, "started_at": started.isoformat(), "ended_at": ended.isoformat()}
    with result.path.open("rb") as f:
        stored = evidence.store_evidence(session, case, f, content_type, actor, meta, store)
    row = {"room_id": room_id, "participant_id": participant_id, "bucket": stored["bucket"],
           "key": stored["key"], "sha256": result.sha256, "size": result.size,
           "duration_s": result.duration_s, "content_type": content_type,
           "started_at": started, "ended_at": ended}
    session.execute(sa.insert(VideoRecording.__table__).values(**row))
    rooms.log(session, room_id, "video_recording", actor,
              {"participant": participant_id, "sha256": result.sha256, "size": result.size,
               "duration_s": result.duration_s, "bucket": stored["bucket"], "key": stored["key"]})
    return row


def save_capture(session: Session, room_id: str, number: str, actor: Actor, target_id: str,
                 material_id: str, jpeg: bytes, name: str,
                 store: ObjectStore | None = None) -> dict[str, Any]:
    page = evidence.add_page(session, number, material_id, jpeg, name, actor, store)
    rooms.log(session, room_id, "video_capture", actor,
              {"participant": target_id, "material": material_id, "sha256": page.get("sha256")})
    return page


def save_file(session: Session, room_id: str, number: str, actor: Actor, participant_id: str,
              material_id: str, data: bytes, name: str,
              store: ObjectStore | None = None) -> dict[str, Any]:
    page = evidence.add_page(session, number, material_id, data, name, actor, store)
    rooms.log(session, room_id, "video_file", actor,
              {"participant": participant_id, "material": material_id, "name": name,
               "sha256": page.get("sha256")})
    return page
