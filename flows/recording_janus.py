"""The janus backend's recordings, at room close: ``.mjr`` → WebM (no re-encode) → case evidence.

Janus records every publisher into the room's ``rec_dir``; once the room is closed this job
converts each publisher's tracks (``video.backends.janus.convert``: ``janus-pp-rec`` and a stream
copy) and stores each file as evidence of the case with its duration and sha256, one
``video_recordings`` row and one ``video_recording`` history event per participant. A replay
stores nothing twice (a participant whose recording is stored is skipped: the WebM muxer
writes a random segment id, so a re-conversion differs in its bytes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect import flow
from sqlmodel import Session

from core.clock import now
from engine.actors import SYSTEM
from storage.objects import ObjectStore
from storage.video_tables import T_PART, VideoRecording
from video.backends import janus
from video.recorder import RecordingResult
from video.store import save_recording


def store_room_recordings(engine: sa.Engine, room_id: str, rec_dir: Path, work_dir: Path,
                          store: ObjectStore | None = None) -> list[dict[str, Any]]:
    converted = janus.convert(rec_dir, work_dir)
    stored: list[dict[str, Any]] = []
    with Session(engine) as session, session.begin():
        parts = session.execute(sa.select(T_PART).where(T_PART.c.room_id == room_id)).mappings().all()
        by_publisher = {janus.publisher_number(p["id"]): dict(p) for p in parts}
        have = set(session.execute(sa.select(VideoRecording.__table__.c.participant_id)
                                   .where(VideoRecording.__table__.c.room_id == room_id)).scalars())
        for rec in converted:
            part = by_publisher.get(rec.publisher)
            if part is None or part["id"] in have:
                continue
            ended = now()
            result = RecordingResult(rec.path, rec.duration, rec.sha256, rec.size, 0, 0)
            started = part.get("joined_at") or ended
            stored.append(save_recording(session, room_id, part["id"], SYSTEM, result, started, ended,
                                         store, content_type="video/webm"))
    return stored


@flow(name="janus-recordings")
def janus_recordings(room_id: str, rec_dir: str, work_dir: str) -> int:
    from storage.db import get_engine

    return len(store_room_recordings(get_engine(), room_id, Path(rec_dir), Path(work_dir)))
