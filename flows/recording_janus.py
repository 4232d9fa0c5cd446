"""The janus backend's recordings, at room close: ``.mjr`` → WebM (no re-encode) → case evidence.

Janus records every publisher into the room's ``rec_dir``; closing the room queues this job in
the close's own transaction (video/rooms.py), on the video queue (``video_job_queue``): the
``.mjr`` files are on the disk of Janus's machine, so the job runs in the serving process there
(embedded drain) or on a worker started there with ``tongban worker --region video``, never on a
counter's regional pool. The job makes sure the Janus room is gone (its recordings then closed),
converts each publishing session (``video.backends.janus.convert``: ``janus-pp-rec`` and a stream
copy) and stores each file as evidence of the case with its duration and sha256, one
``video_recordings`` row and one ``video_recording`` history event per session, in the job's
effect transaction; the ``.mjr`` originals are deleted once that committed (the evidence is what
is kept). Janus unreachable or refusing, or participants in the room but no recording folder on
this machine, fail the attempt: the job is retried, never done with nothing stored. A replay
stores nothing twice (a session already stored is skipped: the WebM muxer writes a random
segment id, so a re-conversion differs in its bytes).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session

from core.settings import get_settings
from engine.actors import SYSTEM
from engine.extensions import JOBS
from flows.effects import effect
from storage.objects import ObjectStore
from storage.rows import OutboxJobRow
from storage.video_tables import T_PART, T_REC
from video.backends import janus
from video.recorder import RecordingResult
from video.rooms import RECORDING_JOB
from video.store import save_recording

log = logging.getLogger("tongban.video")


class RecordingsNotReady(RuntimeError):
    """The room's recordings cannot be stored yet (Janus unreachable, the files not on this
    machine): the job fails this attempt and is retried, never done with nothing stored."""


def store_converted(session: Session, room_id: str, converted: list[janus.Converted],
                    store: ObjectStore | None = None) -> list[dict[str, Any]]:
    """Each converted session as evidence of its participant, once (a replay skips what is stored:
    a participant's session is known by its start, taken from Janus's file names)."""
    parts = session.execute(sa.select(T_PART).where(T_PART.c.room_id == room_id)).mappings().all()
    by_publisher = {janus.publisher_number(p["id"]): dict(p) for p in parts}
    have = {(pid, round(at.timestamp(), 3)) for pid, at in session.execute(
        sa.select(T_REC.c.participant_id, T_REC.c.started_at).where(T_REC.c.room_id == room_id)).all()}
    stored: list[dict[str, Any]] = []
    for rec in converted:
        part = by_publisher.get(rec.publisher)
        if part is None:
            log.warning("video: recording %s of room %s names no participant; not stored", rec.path.name, room_id)
            continue
        started = datetime.fromtimestamp(rec.started, UTC)
        if (part["id"], round(started.timestamp(), 3)) in have:
            continue
        ended = started + timedelta(seconds=rec.duration)
        result = RecordingResult(rec.path, rec.duration, rec.sha256, rec.size, 0, 0)
        stored.append(save_recording(session, room_id, part["id"], SYSTEM, result, started, ended,
                                     store, content_type="video/webm"))
        have.add((part["id"], round(started.timestamp(), 3)))
    return stored


def stored_publishers(session: Session, room_id: str) -> set[int]:
    """The VideoRoom publisher ids whose recordings are stored as the room's evidence."""
    return {janus.publisher_number(pid) for pid in session.execute(
        sa.select(T_REC.c.participant_id).where(T_REC.c.room_id == room_id)).scalars()}


def remove_originals(rec_dir: Path, converted: list[janus.Converted], evidenced: set[int]) -> None:
    """Janus's ``.mjr`` files once their WebM is stored as evidence (the evidence is what is kept;
    the originals of a session that named no participant stay, as does the folder then)."""
    for rec in converted:
        if rec.publisher in evidenced:
            for name in rec.source:
                (rec_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: something is left to look at by hand
        rec_dir.rmdir()


def store_room_recordings(engine: sa.Engine, room_id: str, rec_dir: Path, work_dir: Path,
                          store: ObjectStore | None = None) -> list[dict[str, Any]]:
    converted = janus.convert(rec_dir, work_dir)
    with Session(engine) as session, session.begin():
        return store_converted(session, room_id, converted, store)


def confirm_destroyed(room_id: str) -> None:
    """Destroy the VideoRoom room if it is still there (normally done at close already): only then
    are its recordings closed. Janus unreachable, or refusing, is a retry, not a done job."""
    try:
        api = janus.VideoRoomAPI()
        try:
            api.close_room(room_id)  # False: it was gone already (destroyed at close, or Janus restarted)
        finally:
            api.close()
    except (httpx.HTTPError, janus.JanusError) as exc:
        raise RecordingsNotReady(f"无法确认 Janus 会议室已销毁 (录像文件可能尚未关闭): {exc}") from exc


@JOBS.register(RECORDING_JOB, "转存视频录像")
def janus_recordings_job(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    room_id = str((job["payload"] or {})["room"])
    rec_dir = janus.recordings_dir(room_id)
    with Session(engine) as session:
        joined = session.execute(sa.select(sa.func.count()).select_from(T_PART)
                                 .where(T_PART.c.room_id == room_id)).scalar_one()
    if joined:  # nobody joined: Janus recorded nothing (it may never have had the room)
        confirm_destroyed(room_id)
    if not rec_dir.is_dir() and joined:
        # Participants were in the room, so Janus recorded into this folder: not here means this
        # process is not on Janus's machine (or the disk is not mounted). Retry, never "no recordings".
        raise RecordingsNotReady(f"会议室 {room_id} 有 {joined} 位参会者, 但本机没有其录像目录 {rec_dir}")
    work = get_settings().data_dir / "video-tmp" / f"janus-{job['id']}"
    converted = janus.convert(rec_dir, work) if rec_dir.is_dir() else []
    try:
        with effect(engine, job) as eff:
            stored = store_converted(eff.session, room_id, converted)
            evidenced = stored_publishers(eff.session, room_id)
            eff.result.update({"room": room_id, "recordings": [
                {"participant": r["participant_id"], "sha256": r["sha256"], "duration_s": r["duration_s"]}
                for r in stored]})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if rec_dir.is_dir():  # after the commit: the evidence is stored
        remove_originals(rec_dir, converted, evidenced)
    return eff.result
