"""Scanned pages on cases, and evidence: the engine functions behind the document routes.

Callable without HTTP by flows (certificates) and video (recordings, captured stills)::

    page = scans.add_page(session, number, "license", jpeg_bytes, "营业执照.jpg", actor)
    info = scans.store_evidence(session, number, "certificate", pdf_bytes, "application/pdf", SYSTEM)

Consistency: the object is stored first and the row committed after, so a row never points at
a missing object; a failure between the two leaves only an orphan for ``tongban storage sweep``.
Each change writes, in the caller's ONE transaction, its rows, the material checklist, a
bumped case version and a history event. An object-store outage raises ``Unavailable`` (503
with Retry-After) before any row is written.

Ingest of an image overlaps its two slow steps: the decode (Pillow, outside the GIL) runs on a
checker thread while the request's thread writes the object with a conditional create (S3
``If-None-Match: *``). If the bytes fail, the object this upload created is deleted again; an
object that existed before is neither rewritten nor deleted until the bytes have passed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine import catalog, thumbnails
from engine.access import require_case_reader
from engine.actors import Actor
from engine.advance import append_event, load_case, require_holder
from engine.errors import (
    Conflict,
    EngineError,
    InvalidInput,
    NotFound,
    StaleVersion,
    Unavailable,
)
from engine.scan_validation import (
    Checked,
    UploadRefused,
    UploadTooLarge,
    check_name,
    check_size,
    sniff,
    validate,
)
from storage.db import bound_engine, session_scope
from storage.documents import T_EVID, T_PAGE
from storage.object_factory import get_store
from storage.objects import (
    BucketKind,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    ObjectTooLarge,
    StoreUnavailable,
    bucket_for,
)
from storage.rows import CaseRow
from storage.tables import T_CASE, T_MAT, Counter

CHUNK = 1 << 20
IN_MEMORY = 8 << 20  # uploads up to this size are held as bytes: checked while being written
log = logging.getLogger(__name__)


class Gone(EngineError):
    status, type, title = 410, "/problems/gone", "已清理"
    help = "所请求的文件已按保存期限清理 (例如已撤回的扫描页), 不能再下载。留痕记录仍在办件历史中。"


def store_unavailable(exc: Exception) -> Unavailable:
    """A store that cannot be reached, as the 503 (with Retry-After) every caller answers."""
    return Unavailable(f"对象存储暂不可用, 请稍后重试: {exc}",
                       retry_after=get_settings().store_retry_after)


# --- access ---------------------------------------------------------------------------------

def _lock_case(session: Session, number: str) -> CaseRow:
    """Re-read the case under a row lock (PostgreSQL) so concurrent uploads to one case queue up
    instead of failing on the version check; SQLite's BEGIN IMMEDIATE already serialises."""
    row = session.execute(
        sa.select(T_CASE).where(T_CASE.c.number == number).with_for_update()
    ).mappings().first()
    if row is None:
        raise NotFound(f"办件 {number} 不存在")
    return dict(row)


def _check_version(case: CaseRow, expected: int | None) -> None:
    if expected is not None and case["version"] != expected:
        raise StaleVersion(f"办件版本为 {case['version']}, 请求基于版本 {expected}",
                           current_version=case["version"])


def _region(session: Session, case: CaseRow, actor: Actor) -> str | None:
    """Objects go to the bucket of the acting counter's region (the competent one for the system)."""
    if actor.region_code:
        return actor.region_code
    return session.execute(sa.select(Counter.region_code).where(
        Counter.id == case["competent_counter_id"])).scalar_one_or_none()


def bucket(kind: BucketKind, region_code: str | None) -> str:
    s = get_settings()
    return bucket_for(kind, region_code, prefix=s.bucket_prefix, per_region=s.region_buckets)


def _seekable(data: bytes | BinaryIO, max_bytes: int, field: str) -> tuple[BinaryIO, int]:
    """Bytes or any stream → a seekable stream and its size, refusing more than ``max_bytes``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(data), len(data)
    if data.seekable():
        start = data.tell()
        size = data.seek(0, io.SEEK_END) - start
        data.seek(start)
        return data, size
    spool: BinaryIO = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # type: ignore[assignment]  # noqa: SIM115 (returned)
    size = 0
    while chunk := data.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            spool.close()
            raise UploadTooLarge(field, "too_large", f"文件超过大小上限 {max_bytes} 字节")
        spool.write(chunk)
    spool.seek(0)
    return spool, size


# --- pages ----------------------------------------------------------------------------------

def _active_pages(session: Session, case_id: int, material_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(T_PAGE).where(T_PAGE.c.case_id == case_id, T_PAGE.c.material_id == material_id,
                                T_PAGE.c.withdrawn_at.is_(None))
        .order_by(T_PAGE.c.page_no, T_PAGE.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def _require_material(session: Session, case: CaseRow, material_id: str) -> None:
    materials = catalog.compiled(session, case["item_version_id"]).definition.materials
    if material_id not in {m.id for m in materials}:
        raise NotFound(f"事项没有材料 '{material_id}'")


def _precheck(session: Session, number: str, material_id: str, actor: Actor,
              expected_version: int | None) -> str:
    """Refuse what we can before any object is written; return the bucket for the page.

    When the caller has no transaction open yet, the check reads in a short unit of its own, so
    no lock (SQLite's write lock, a PostgreSQL row lock) is held while the object is written:
    uploads to the store overlap, only their short row transactions queue up."""
    def check(s: Session) -> str:
        case = load_case(s, number)
        if not actor.is_system:
            require_holder(s, case, actor)
        _require_material(s, case, material_id)
        _check_version(case, expected_version)
        return bucket("scans", _region(s, case, actor))

    if session.in_transaction():
        return check(session)
    with session_scope(bound_engine(session).execution_options(readonly=True)) as reader:
        return check(reader)


def upload_target(session: Session, number: str, material_id: str, actor: Actor,
                  expected_version: int | None = None) -> str:
    """Refuse what can be refused before any byte is accepted (unknown case or material, not the
    holder, stale ``If-Match``); return the bucket the page will go to. The upload route calls it
    inside the authentication's unit, before it reads the body, and hands the answer to
    ``add_page(target=…)``: one unit of work less per page, and a refusal costs no upload."""
    return _precheck(session, number, material_id, actor, expected_version)


def _in_memory(data: bytes | BinaryIO, max_bytes: int, field: str,
               sha256: str | None) -> tuple[bytes | BinaryIO, int, str | None]:
    """Small uploads as bytes (two readers at once: the check and the object write); a large
    one stays a seekable stream. Returns the data, its size and its digest when already known."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data) if not isinstance(data, bytes) else data, len(data), sha256
    stream, size = _seekable(data, max_bytes, field)
    if size > IN_MEMORY:
        return stream, size, sha256
    whole = stream.read()
    if stream is not data:
        stream.close()
    return whole, len(whole), sha256


def add_page(session: Session, number: str, material_id: str, data: bytes | BinaryIO,
             declared_name: str | None, actor: Actor, *, store: ObjectStore | None = None,
             expected_version: int | None = None, field: str = "file",
             sha256: str | None = None, target: str | None = None) -> dict[str, Any]:
    """Add one scanned page (JPEG, PNG, TIFF or PDF) to a material slot of case ``number``.

    Validates the bytes, stores the object, then in the caller's transaction inserts the page,
    marks the material ``received``, bumps the case version and appends a ``page_added`` event.
    Only the counter holding the case may add pages (the system actor too: captured stills).
    Raises UploadRefused (422) / UploadTooLarge (413), Forbidden, NotFound, StaleVersion,
    Unavailable (503). Returns the page row as a dict.

    ``sha256``: the digest of ``data`` when the caller hashed it as it arrived (not recomputed).
    ``target``: the bucket from ``upload_target`` when the caller already made that check.

    An image decodes while its object is written (Pillow lets go of the GIL), but only when the
    key did not exist before this upload: if the bytes then fail, the object this upload created
    is deleted again. The keys are content-addressed and the check is a function of the bytes
    alone, so no row can ever point at such an object; an object that existed before is never
    written or deleted before its bytes passed.
    """
    s = get_settings()
    store = store or get_store()
    declared_name = check_name(declared_name, field)  # stored as checked (NFC)
    body, size, digest = _in_memory(data, s.max_upload_bytes, field, sha256)
    check_size(size, s.max_upload_bytes, field)
    media_type = sniff(body[:16]) if isinstance(body, bytes) else None  # large: check, then write
    if isinstance(body, bytes) and media_type is not None and media_type.startswith("image/"):
        checked, info = _check_while_writing(
            session, number, material_id, actor, store, body, media_type,
            digest or hashlib.sha256(body).hexdigest(), declared_name, expected_version, field, target)
    else:
        stream = io.BytesIO(body) if isinstance(body, bytes) else body
        # Validate before the first query: on SQLite that query takes the write lock, which
        # should not be held while a large scan is checked.
        checked = validate(stream, size, name=declared_name, max_bytes=s.max_upload_bytes, field=field)
        b = target or _precheck(session, number, material_id, actor, expected_version)
        info = _write(store, b, stream, checked.media_type, digest, field)
    return _page_rows(session, number, material_id, actor, expected_version, store, info, checked,
                      declared_name)


def _check_while_writing(session: Session, number: str, material_id: str, actor: Actor,
                         store: ObjectStore, body: bytes, media_type: str, digest: str,
                         declared_name: str | None, expected_version: int | None, field: str,
                         target: str | None) -> tuple[Checked, ObjectInfo]:
    s = get_settings()
    check = _checkers().submit(validate, io.BytesIO(body), len(body), name=declared_name,
                               max_bytes=s.max_upload_bytes, field=field)
    try:
        b = target or _precheck(session, number, material_id, actor, expected_version)
        try:
            store.ensure_bucket(b)
            info = store.create(b, body, media_type, sha256=digest)  # None: it existed before
        except StoreUnavailable as exc:
            check.result()  # a bad file is refused for what it is, even while the store is down
            raise store_unavailable(exc) from exc
        try:
            checked = check.result()
        except (UploadRefused, Unavailable):  # refused, or not checked (every decode worker busy)
            if info is not None:  # created by this upload, whose bytes failed: no row can use it
                _forget(store, b, info.key)
            raise
        if info is None:  # the same bytes are already stored: written again (young for the sweep)
            info = _write(store, b, io.BytesIO(body), media_type, digest, field)
        return checked, info
    finally:
        check.cancel()


def _write(store: ObjectStore, b: str, stream: BinaryIO, media_type: str, digest: str | None,
           field: str) -> ObjectInfo:
    s = get_settings()
    try:
        store.ensure_bucket(b)
        return store.put(b, stream, media_type, max_bytes=s.max_upload_bytes, sha256=digest)
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from exc
    except ObjectTooLarge as exc:  # the stream grew after we measured it
        raise UploadTooLarge(field, "too_large", f"文件超过大小上限 {s.max_upload_bytes} 字节") from exc


def _forget(store: ObjectStore, b: str, key: str) -> None:
    try:
        store.delete(b, key)
    except (StoreUnavailable, OSError):  # the sweep takes it later (an orphan, never referenced)
        log.warning("无法删除未通过校验的对象 %s/%s, 留待清理", b, key, exc_info=True)


def _page_rows(session: Session, number: str, material_id: str, actor: Actor,
               expected_version: int | None, store: ObjectStore, info: ObjectInfo, checked: Checked,
               declared_name: str | None) -> dict[str, Any]:
    # The object exists: now the rows, under the case row lock, re-checking what may have moved.
    case = _lock_case(session, number)
    if not actor.is_system:
        require_holder(session, case, actor)
    _check_version(case, expected_version)
    at = now()
    page_no = 1 + session.execute(sa.select(sa.func.count()).select_from(T_PAGE).where(
        T_PAGE.c.case_id == case["id"], T_PAGE.c.material_id == material_id,
        T_PAGE.c.withdrawn_at.is_(None))).scalar_one()
    row = {
        "case_id": case["id"], "material_id": material_id, "page_no": page_no,
        "sha256": info.sha256, "size": info.size, "media_type": checked.media_type,
        "bucket": info.bucket, "key": info.key, "original_name": declared_name,
        "width": checked.width, "height": checked.height, "pages": checked.pages,
        "uploaded_by": actor.id, "uploaded_by_name": actor.name, "counter_id": actor.counter_id,
        "uploaded_at": at,
    }
    row["id"] = session.execute(_INSERT_PAGE, row).scalar_one()
    _set_material(session, case["id"], material_id, "received", at)
    append_event(session, case, None, at, "page_added", actor, {
        "material": material_id, "page_id": row["id"], "page_no": page_no, "sha256": info.sha256,
        "size": info.size, "media_type": checked.media_type, "name": declared_name,
    })
    if checked.media_type.startswith("image/"):
        thumbnails.after_commit(session, store, row["id"], checked.thumbnail or checked.preview)
    return row | {"withdrawn_at": None, "withdrawn_by": None, "thumbnail_key": None,
                  "case_version": case["version"]}


_INSERT_PAGE = sa.insert(T_PAGE).returning(T_PAGE.c.id)
_CHECKERS: ThreadPoolExecutor | None = None


def _checkers() -> ThreadPoolExecutor:
    """Threads that check images while the request's thread writes the object."""
    global _CHECKERS
    if _CHECKERS is None:
        _CHECKERS = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                       thread_name_prefix="scan-check")
    return _CHECKERS


def _set_material(session: Session, case_id: int, material_id: str, status: str, at: datetime) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": at}
    if status == "received":
        values |= {"promise": None, "deferred_due": None}
    session.execute(sa.update(T_MAT).where(T_MAT.c.case_id == case_id,
                                           T_MAT.c.material_id == material_id).values(**values))


def list_pages(session: Session, number: str, actor: Actor, material_id: str | None = None,
               include_withdrawn: bool = False) -> list[dict[str, Any]]:
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    if material_id is not None:
        _require_material(session, case, material_id)
    q = sa.select(T_PAGE).where(T_PAGE.c.case_id == case["id"])
    if material_id is not None:
        q = q.where(T_PAGE.c.material_id == material_id)
    if not include_withdrawn:
        q = q.where(T_PAGE.c.withdrawn_at.is_(None))
    rows = session.execute(q.order_by(T_PAGE.c.material_id, T_PAGE.c.withdrawn_at.isnot(None),
                                      T_PAGE.c.page_no, T_PAGE.c.id)).mappings()
    return [dict(r) for r in rows]


def _get_page(session: Session, case: CaseRow, material_id: str, page_id: int) -> dict[str, Any]:
    row = session.execute(sa.select(T_PAGE).where(
        T_PAGE.c.id == page_id, T_PAGE.c.case_id == case["id"],
        T_PAGE.c.material_id == material_id)).mappings().first()
    if row is None:
        raise NotFound(f"材料 {material_id} 没有页面 #{page_id}")
    return dict(row)


def reorder_pages(session: Session, number: str, material_id: str, page_ids: list[int],
                  actor: Actor, expected_version: int | None = None) -> list[dict[str, Any]]:
    """Set the order of a slot's pages; ``page_ids`` must list every current page exactly once."""
    case = _lock_case(session, number)
    require_holder(session, case, actor)
    _require_material(session, case, material_id)
    _check_version(case, expected_version)
    pages = _active_pages(session, case["id"], material_id)
    if sorted(page_ids) != sorted(p["id"] for p in pages) or len(set(page_ids)) != len(page_ids):
        raise InvalidInput("page_ids", f"须不重复地列出该材料的全部 {len(pages)} 个现有页面")
    for no, pid in enumerate(page_ids, start=1):
        session.execute(sa.update(T_PAGE).where(T_PAGE.c.id == pid).values(page_no=no))
    append_event(session, case, None, now(), "pages_reordered", actor,
                 {"material": material_id, "order": page_ids})
    return _active_pages(session, case["id"], material_id)


def withdraw_page(session: Session, number: str, material_id: str, page_id: int, actor: Actor,
                  expected_version: int | None = None, comment: str | None = None) -> dict[str, Any]:
    """Withdraw a page (recorded in history; the object stays until swept). When the slot's last
    page goes, the material is missing again."""
    case = _lock_case(session, number)
    require_holder(session, case, actor)
    _require_material(session, case, material_id)
    _check_version(case, expected_version)
    page = _get_page(session, case, material_id, page_id)
    if page["withdrawn_at"] is not None:
        raise Conflict(f"页面 #{page_id} 已撤回")
    at = now()
    session.execute(sa.update(T_PAGE).where(T_PAGE.c.id == page_id)
                    .values(withdrawn_at=at, withdrawn_by=actor.id))
    remaining = _active_pages(session, case["id"], material_id)
    for no, p in enumerate(remaining, start=1):
        if p["page_no"] != no:
            session.execute(sa.update(T_PAGE).where(T_PAGE.c.id == p["id"]).values(page_no=no))
    status = None
    if not remaining:
        status = "missing"
        _set_material(session, case["id"], material_id, "missing", at)
    append_event(session, case, None, at, "page_withdrawn", actor,
                 {"material": material_id, "page_id": page_id, "sha256": page["sha256"],
                  "material_status": status}, comment)
    return page | {"withdrawn_at": at, "withdrawn_by": actor.id, "case_version": case["version"]}


# --- downloads ------------------------------------------------------------------------------

@dataclass
class Download:
    """Either a short-lived ``url`` (S3) or a ``stream`` of bytes (local folder)."""

    media_type: str
    size: int
    sha256: str
    filename: str
    url: str | None = None
    expires_in: int | None = None
    stream: Iterator[bytes] | None = None


def _open(store: ObjectStore, bucket_name: str, key: str, media_type: str, size: int, sha: str,
          filename: str) -> Download:
    seconds = get_settings().presign_seconds
    try:
        url = store.presigned_url(bucket_name, key, seconds=seconds)
        if url is not None:
            return Download(media_type, size, sha, filename, url=url, expires_in=seconds)
        return Download(media_type, size, sha, filename, stream=store.get(bucket_name, key))
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from exc
    except ObjectMissing as exc:  # only a page withdrawn long enough ago may have been swept
        raise Gone(f"对象 {key} 已不在存储中 (撤回的页面会在宽限期后被清理)") from exc


def page_download(session: Session, number: str, material_id: str, page_id: int, actor: Actor,
                  *, store: ObjectStore | None = None, thumbnail: bool = False) -> Download:
    """Open a page for download and record who downloaded it (thumbnails are not recorded)."""
    store = store or get_store()
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    page = _get_page(session, case, material_id, page_id)
    ext = {"image/jpeg": ".jpg", "image/png": ".png", "image/tiff": ".tif",
           "application/pdf": ".pdf"}.get(page["media_type"], "")
    if thumbnail:
        if not page["thumbnail_key"]:
            raise NotFound("缩略图尚未生成")
        return _open(store, page["bucket"], page["thumbnail_key"], "image/jpeg", 0,
                     page["thumbnail_key"].rsplit("/", 1)[-1], f"{number}-{material_id}-{page['page_no']}-thumb.jpg")
    d = _open(store, page["bucket"], page["key"], page["media_type"], page["size"], page["sha256"],
              f"{number}-{material_id}-{page['page_no']}{ext}")
    _record_download(session, number, actor, "page_downloaded",
                     {"material": material_id, "page_id": page_id, "sha256": page["sha256"],
                      "via": "presigned_url" if d.url else "stream"})
    return d


def _record_download(session: Session, number: str, actor: Actor, kind: str, data: dict[str, Any]) -> None:
    """Append the download to the case history, under the case row lock (parallel downloads of
    one case queue up instead of failing the version check). A GET's session may be read-only
    (on SQLite it must not upgrade its snapshot to a write): then a short unit of its own."""
    bind = bound_engine(session)
    if not bind.get_execution_options().get("readonly"):
        append_event(session, _lock_case(session, number), None, now(), kind, actor, data)
        return
    with session_scope(bind.execution_options(readonly=False)) as writer:
        append_event(writer, _lock_case(writer, number), None, now(), kind, actor, data)


# --- evidence -------------------------------------------------------------------------------

def store_evidence(session: Session, case: str | int | CaseRow, kind: str, data: bytes | BinaryIO,
                   content_type: str, actor: Actor, *, store: ObjectStore | None = None,
                   meta: dict[str, Any] | None = None) -> ObjectInfo:
    """Store a certificate, recording, … as retained evidence of a case.

    The object goes to the evidence bucket (versioned, object lock; retention mode and days
    from settings) of the actor's region (the competent counter's for the system); then, in the
    caller's transaction, an ``evidence`` row and an ``evidence_stored`` history event.
    ``case`` is the case number, its id, or its row dict (re-read: never trusted as current). The same
    bytes stored twice keep their one retained version. Raises Unavailable (503) when the store
    is down, InvalidInput for an empty body. ``list_evidence`` gives the row ids.
    """
    s = get_settings()
    store = store or get_store()
    number = case if isinstance(case, str) else case["number"] if isinstance(case, dict) else \
        _number_of(session, case)
    if not kind or len(kind) > 32:
        raise InvalidInput("kind", "证据类型须为 1–32 个字符")
    stream, size = _seekable(data, s.max_evidence_bytes, "data")
    if size == 0:
        raise UploadRefused("data", "empty", "文件为空")
    row = load_case(session, number)
    b = bucket("evidence", _region(session, row, actor))
    try:
        store.ensure_bucket(b, evidence=True)
        info = store.put(b, stream, content_type, max_bytes=s.max_evidence_bytes,
                         retain_days=s.evidence_retention_days)
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from exc
    except ObjectTooLarge as exc:
        raise UploadTooLarge("data", "too_large", f"超过大小上限 {s.max_evidence_bytes} 字节") from exc
    row = _lock_case(session, number)
    at = now()
    evidence_id = session.execute(sa.insert(T_EVID).values(
        case_id=row["id"], kind=kind, sha256=info.sha256, size=info.size, media_type=content_type,
        bucket=info.bucket, key=info.key, version_id=info.version_id, retain_until=info.retain_until,
        stored_by=actor.id, stored_by_name=actor.name, counter_id=actor.counter_id, stored_at=at,
        meta=meta,
    ).returning(T_EVID.c.id)).scalar_one()
    append_event(session, row, None, at, "evidence_stored", actor,
                 {"evidence_id": evidence_id, "kind": kind, "sha256": info.sha256, "size": info.size,
                  "media_type": content_type})
    return info


def _number_of(session: Session, case_id: int) -> str:
    number = session.execute(sa.select(T_CASE.c.number).where(T_CASE.c.id == case_id)).scalar_one_or_none()
    if number is None:
        raise NotFound(f"办件 #{case_id} 不存在")
    return str(number)


def read_evidence(bucket_name: str, key: str, *, store: ObjectStore | None = None) -> Iterator[bytes]:
    """The bytes of a stored object (for jobs that re-read a certificate); no access check."""
    try:
        return (store or get_store()).get(bucket_name, key)
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from exc


def list_evidence(session: Session, number: str, actor: Actor) -> list[dict[str, Any]]:
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    rows = session.execute(sa.select(T_EVID).where(T_EVID.c.case_id == case["id"])
                           .order_by(T_EVID.c.id)).mappings()
    return [dict(r) for r in rows]


def evidence_download(session: Session, number: str, evidence_id: int, actor: Actor,
                      *, store: ObjectStore | None = None) -> Download:
    store = store or get_store()
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    ev = session.execute(sa.select(T_EVID).where(
        T_EVID.c.id == evidence_id, T_EVID.c.case_id == case["id"])).mappings().first()
    if ev is None:
        raise NotFound(f"办件 {number} 没有证据 #{evidence_id}")
    d = _open(store, ev["bucket"], ev["key"], ev["media_type"], ev["size"], ev["sha256"],
              f"{number}-{ev['kind']}-{evidence_id}")
    _record_download(session, number, actor, "evidence_downloaded",
                     {"evidence_id": evidence_id, "kind": ev["kind"], "sha256": ev["sha256"],
                      "via": "presigned_url" if d.url else "stream"})
    return d


# --- hand-off -------------------------------------------------------------------------------

def manifest(session: Session, number: str) -> list[dict[str, Any]]:
    """The materials manifest a hand-off checks: every current page with its sha256."""
    case = load_case(session, number)
    rows = session.execute(
        sa.select(T_PAGE.c.id, T_PAGE.c.material_id, T_PAGE.c.page_no, T_PAGE.c.sha256,
                  T_PAGE.c.size, T_PAGE.c.media_type, T_PAGE.c.bucket, T_PAGE.c.key)
        .where(T_PAGE.c.case_id == case["id"], T_PAGE.c.withdrawn_at.is_(None))
        .order_by(T_PAGE.c.material_id, T_PAGE.c.page_no)).mappings()
    return [dict(r) for r in rows]


def replicate(session: Session, number: str, region_code: str, *,
              store: ObjectStore | None = None) -> list[dict[str, Any]]:
    """Copy a case's pages into ``region_code``'s scans bucket (idempotent; verifies size and
    hash) for a hand-off between regions that keep separate buckets. Returns the manifest."""
    store = store or get_store()
    dst = bucket("scans", region_code)
    items = manifest(session, number)
    try:
        store.ensure_bucket(dst)
        for item in items:
            if item["bucket"] == dst:
                continue
            info = store.copy(item["bucket"], item["key"], dst)
            if info.size != item["size"] or info.sha256 != item["sha256"]:
                raise Conflict(f"复制后页面 #{item['id']} 校验不一致")
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from exc
    return [i | {"replica_bucket": dst} for i in items]
