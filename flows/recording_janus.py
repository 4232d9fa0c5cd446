"""The janus backend's recordings, at room close: ``.mjr`` → WebM (no re-encode) → case evidence.

Janus records every publisher into the room's ``rec_dir``; closing the room queues this job in
the close's own transaction (video/rooms.py). The job makes sure the Janus room is gone (its
recordings then closed), converts each publisher's tracks (``video.backends.janus.convert``:
``janus-pp-rec`` and a stream copy) and stores each file as evidence of the case with its
duration and sha256, one ``video_recordings`` row and one ``video_recording`` history event per
participant, in the job's effect transaction. A replay stores nothing twice (a participant
whose recording is stored is skipped: the WebM muxer writes a random segment id, so a
re-conversion differs in its bytes).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine.actors import SYSTEM
from engine.extensions import JOBS
from flows.effects import effect
from storage.objects import ObjectStore
from storage.rows import OutboxJobRow
from storage.video_tables import T_PART, VideoRecording
from video.backends import janus
from video.recorder import RecordingResult
from video.rooms import RECORDING_JOB
from video.store import save_recording

log = logging.getLogger("tongban.video")


def store_converted(session: Session, room_id: str, converted: list[janus.Converted],
                    store: ObjectStore | None = None) -> list[dict[str, Any]]:
    parts = session.execute(sa.select(T_PART).where(T_PART.c.room_id == room_id)).mappings().all()
    by_publisher = {janus.publisher_number(p["id"]): dict(p) for p in parts}
    have = set(session.execute(sa.select(VideoRecording.__table__.c.participant_id)
                               .where(VideoRecording.__table__.c.room_id == room_id)).scalars())
    stored: list[dict[str, Any]] = []
    for rec in converted:
        part = by_publisher.get(rec.publisher)
        if part is None or part["id"] in have:
            continue
        ended = part.get("left_at") or now()
        result = RecordingResult(rec.path, rec.duration, rec.sha256, rec.size, 0, 0)
        started = part.get("joined_at") or ended
        stored.append(save_recording(session, room_id, part["id"], SYSTEM, result, started, ended,
                                     store, content_type="video/webm"))
        have.add(part["id"])
    return stored


def store_room_recordings(engine: sa.Engine, room_id: str, rec_dir: Path, work_dir: Path,
                          store: ObjectStore | None = None) -> list[dict[str, Any]]:
    converted = janus.convert(rec_dir, work_dir)
    with Session(engine) as session, session.begin():
        return store_converted(session, room_id, converted, store)


@JOBS.register(RECORDING_JOB, "转存视频录像")
def janus_recordings_job(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    room_id = str((job["payload"] or {})["room"])
    try:  # normally destroyed at close already; if that failed, here (Janus closes its recordings)
        api = janus.VideoRoomAPI()
        try:
            api.close_room(room_id)
        finally:
            api.close()
    except httpx.HTTPError:
        log.warning("video: Janus unreachable while converting the recordings of %s", room_id)
    rec_dir = janus.recordings_dir(room_id)
    work = get_settings().data_dir / "video-tmp" / f"janus-{job['id']}"
    converted = janus.convert(rec_dir, work) if rec_dir.is_dir() else []
    try:
        with effect(engine, job) as eff:
            stored = store_converted(eff.session, room_id, converted)
            eff.result.update({"room": room_id, "recordings": [
                {"participant": r["participant_id"], "sha256": r["sha256"], "duration_s": r["duration_s"]}
                for r in stored]})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return eff.result

