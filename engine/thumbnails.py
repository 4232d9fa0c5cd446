"""Thumbnails for image pages, stored off the request path by one background thread per process.

The upload's check (``scan_validation.inspect``) already made the small JPEG from the pixels it
decoded; the page registers it after its transaction commits, and this thread stores it
(content-addressed, same bucket) and records its key on the page row. A page without one (made
before, lost to a crash or an outage) is decoded again in the decode pool, with the same memory
and time budgets as an upload: ``backfill`` (``tongban storage thumbnails``). Derived data: it
changes no case version and no history.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from typing import Any

import sqlalchemy as sa
from PIL import Image, ImageOps
from sqlmodel import Session

from core.settings import get_settings
from engine.errors import EngineError
from engine.scan_validation import inspect_bounded, sniff
from storage.db import bound_engine, session_scope
from storage.documents import T_PAGE
from storage.objects import ObjectStore

IMAGE_TYPES = ("image/jpeg", "image/png", "image/tiff")
log = logging.getLogger(__name__)


def render(data: bytes | None, px: int, preview: Image.Image | None = None) -> bytes:
    """A small JPEG from the page's bytes (decoded in the decode pool, within its budgets; ``px``
    is the configured size there), or from a page already decoded at reduced scale."""
    if preview is not None:
        return _encode(preview, px)
    media_type = sniff((data or b"")[:16])
    if media_type not in IMAGE_TYPES:
        raise ValueError("不是图像, 无法生成缩略图")
    thumb = inspect_bounded(data or b"", media_type).thumbnail
    if thumb is None:
        raise ValueError("该图像的色彩模式无法生成缩略图")
    return thumb


def _encode(im: Image.Image, px: int) -> bytes:
    im = im.copy()
    im.thumbnail((px, px))
    out = io.BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


def make_thumbnail(engine: sa.Engine, store: ObjectStore, page_id: int,
                   preview: bytes | Image.Image | None = None) -> str | None:
    """Store and record one page's thumbnail (``preview``: the JPEG the upload's check made, or a
    decoded page; else the object is decoded again); idempotent. Returns the thumbnail key."""
    with session_scope(engine) as s:
        row = s.execute(sa.select(T_PAGE).where(T_PAGE.c.id == page_id)).mappings().first()
    if row is None or row["media_type"] not in IMAGE_TYPES:
        return None
    if row["thumbnail_key"]:
        return str(row["thumbnail_key"])
    px = get_settings().thumbnail_px
    if isinstance(preview, bytes):
        thumb = preview
    elif preview is not None:
        thumb = render(None, px, ImageOps.exif_transpose(preview))
    else:
        thumb = render(b"".join(store.get(row["bucket"], row["key"])), px)
    info = store.put(row["bucket"], io.BytesIO(thumb), "image/jpeg", max_bytes=len(thumb))
    with session_scope(engine) as s:
        s.execute(sa.update(T_PAGE).where(T_PAGE.c.id == page_id, T_PAGE.c.thumbnail_key.is_(None))
                  .values(thumbnail_key=info.key))
    return info.key


def backfill(engine: sa.Engine, store: ObjectStore) -> int:
    """Make every missing image thumbnail now (after an outage or a crash)."""
    with session_scope(engine) as s:
        ids = s.execute(sa.select(T_PAGE.c.id).where(
            T_PAGE.c.thumbnail_key.is_(None), T_PAGE.c.media_type.in_(IMAGE_TYPES))).scalars().all()
    made = 0
    for i in ids:
        try:
            made += make_thumbnail(engine, store, i) is not None
        except (EngineError, ValueError):  # refused within today's budgets: the others still get theirs
            log.warning("缩略图生成失败: page %s", i, exc_info=True)
    return made


class ThumbnailWorker:
    """One daemon thread draining a queue; ``wait_idle`` lets tests and benches wait for it."""

    def __init__(self) -> None:
        self.q: queue.Queue[tuple[sa.Engine, ObjectStore, int, bytes | Image.Image | None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0

    def submit(self, engine: sa.Engine, store: ObjectStore, page_id: int,
               preview: bytes | Image.Image | None = None) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="thumbnails", daemon=True)
                self._thread.start()
        self.q.put((engine, store, page_id, preview))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            engine, store, page_id, preview = self.q.get()
            try:
                make_thumbnail(engine, store, page_id, preview)
            except Exception:  # an outage or a bad object: backfill retries later
                log.warning("缩略图生成失败: page %s", page_id, exc_info=True)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()


worker = ThumbnailWorker()


def after_commit(session: Session, store: ObjectStore, page_id: int,
                 preview: bytes | Image.Image | None = None) -> None:
    """Queue the page's thumbnail (``preview``: as for ``make_thumbnail``) once the caller's
    transaction commits (never before)."""
    pending: list[tuple[int, bytes | Image.Image | None]] | None = session.info.get("thumbnail_pages")
    if pending is None:
        pending = session.info["thumbnail_pages"] = []
        engine = bound_engine(session)

        def _commit(s: Any) -> None:
            for pid, small in s.info.pop("thumbnail_pages", []):
                worker.submit(engine, store, pid, small)

        def _rollback(s: Any) -> None:
            s.info.pop("thumbnail_pages", None)

        sa.event.listen(session, "after_commit", _commit, once=True)
        sa.event.listen(session, "after_soft_rollback", _rollback, once=True)
    pending.append((page_id, preview))
