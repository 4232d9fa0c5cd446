"""要件预审: before an application, the applicant uploads drafts against the item's material list
for their 情形 with a phone number; a clerk of a counter taking the item comments per material.
No case number and no clock: nothing runs until intake, where the pre-review becomes a case with
the drafts the clerk passed carried over as its scanned materials, the phone as the applicant's
contact, the 情形 as the case's answers, and the history saying it came from 预审 <code>.

A draft marked 需修改 (or one never sent) may be uploaded again with the 预审码: a new version
of that material, back to 待预审; the earlier draft and the clerk's comment on it stay in the
record. Drafts are objects in the drafts bucket, stored before their rows (a failure between
leaves an orphan for ``tongban storage sweep``); ``engine.prereview_purge`` deletes them."""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine import catalog, directory, intake, scans, situations
from engine.actors import Actor
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.intake import QUERY_ALPHABET
from engine.scan_validation import check_name, check_size, sniff
from storage.object_factory import get_store
from storage.objects import ObjectInfo, ObjectMissing, ObjectStore, StoreUnavailable, bucket_for
from storage.prereview_tables import T_DRAFT, T_PRE
from storage.rows import CaseRow

VERDICTS = {"ok": "合格", "redo": "需修改"}
STATUS_LABELS = {"open": "待预审", "reviewed": "已预审", "converted": "已转为办件", "expired": "已过期"}
PHONE = re.compile(r"^\+?[0-9\-]{6,20}$")  # the applicant's contact at intake (api.schemas.Phone)
MAX_BODY_BYTES = 8 * 1024 * 1024  # one submission's drafts together (photos from a phone)
MAX_DRAFT_BYTES = 4 * 1024 * 1024


def drafts_bucket() -> str:
    return bucket_for("drafts", None, prefix=get_settings().bucket_prefix, per_region=False)


def _definition(session: Session, code: str) -> Any:
    try:
        return catalog.compiled(session, catalog.latest_version(session, code).id).definition
    except NotFound:
        raise InvalidInput("item_code", f"事项 {code} 不存在") from None


def _check_drafts(d: Any, wanted: set[str], drafts: Mapping[str, tuple[str, bytes]]) -> dict[str, str]:
    """Refuse any draft before a byte is stored; the media type of each."""
    if not drafts:
        raise InvalidInput("drafts", "至少上传一份材料草稿")
    limit = min(get_settings().max_upload_bytes, MAX_DRAFT_BYTES)
    kinds = {}
    for mid, (name, data) in drafts.items():
        if mid not in wanted:
            raise InvalidInput(f"drafts.{mid}", "所选情形不需要此材料" if any(
                m.id == mid for m in d.materials) else "事项没有此材料")
        check_name(name, f"drafts.{mid}.name")
        check_size(len(data), limit, f"drafts.{mid}")
        kind = sniff(data[:16])
        if kind is None:
            raise InvalidInput(f"drafts.{mid}", "须为 JPEG、PNG、TIFF 或 PDF 文件")
        kinds[mid] = kind
    return kinds


def _store(drafts: Mapping[str, tuple[str, bytes]], kinds: Mapping[str, str],
           store: ObjectStore) -> dict[str, ObjectInfo]:
    b = drafts_bucket()
    try:
        store.ensure_bucket(b)
        return {mid: store.put(b, io.BytesIO(data), kinds[mid], max_bytes=len(data))
                for mid, (_, data) in drafts.items()}
    except StoreUnavailable as exc:
        raise scans.store_unavailable(exc) from exc


def _insert(session: Session, pid: int, drafts: Mapping[str, tuple[str, bytes]], stored: Mapping[str, ObjectInfo],
            versions: Mapping[str, int]) -> None:
    at = now()
    session.execute(sa.insert(T_DRAFT), [
        {"prereview_id": pid, "material_id": mid, "version": versions.get(mid, 0) + 1, "file_name": name,
         "content_type": stored[mid].content_type, "size": stored[mid].size, "bucket": stored[mid].bucket,
         "key": stored[mid].key, "uploaded_at": at, "verdict": None, "comment": None, "reviewer": None,
         "reviewed_at": None}
        for mid, (name, _) in drafts.items()])


def submit(session: Session, item_code: str, phone: str, answers: dict[str, str],
           drafts: dict[str, tuple[str, bytes]], *, store: ObjectStore | None = None) -> str:
    """Store a pre-review; returns its 预审码 (the only key to it the applicant holds)."""
    d = _definition(session, item_code)
    answers = situations.check_answers(d, answers)
    phone = phone.replace(" ", "")
    if not PHONE.match(phone):
        raise InvalidInput("phone", "须为 6–20 位电话号码")
    kinds = _check_drafts(d, {m.id for m in situations.selected_materials(d, answers)}, drafts)
    stored = _store(drafts, kinds, store or get_store())
    at = now()
    code = "".join(secrets.choice(QUERY_ALPHABET) for _ in range(12))
    pid = session.execute(sa.insert(T_PRE).values(
        code=code, item_code=d.code, phone=phone, answers=answers, status="open", case_number=None,
        created_at=at, updated_at=at).returning(T_PRE.c.id)).scalar_one()
    _insert(session, pid, drafts, stored, {})
    return code


def _load(session: Session, code: str, lock: bool = False) -> dict[str, Any]:
    q = sa.select(T_PRE).where(T_PRE.c.code == code.upper()[:16])
    row = session.execute(q.with_for_update() if lock else q).mappings().one_or_none()
    if row is None:
        raise NotFound("没有这个预审码")
    return dict(row)


def _versions(session: Session, pid: int) -> dict[str, list[dict[str, Any]]]:
    """Each material's drafts, oldest first (the last is the one under review)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in session.execute(sa.select(T_DRAFT).where(T_DRAFT.c.prereview_id == pid)
                             .order_by(T_DRAFT.c.material_id, T_DRAFT.c.version)).mappings():
        out.setdefault(r["material_id"], []).append(dict(r))
    return out


def _version_view(r: dict[str, Any]) -> dict[str, Any]:
    return {"version": r["version"], "file_name": r["file_name"], "uploaded_at": r["uploaded_at"],
            "verdict": r["verdict"], "verdict_label": VERDICTS.get(r["verdict"] or ""),
            "comment": r["comment"], "reviewed_at": r["reviewed_at"], "kept": r["key"] is not None}


def _open(pre: Mapping[str, Any]) -> None:
    if pre["status"] == "converted":
        raise Conflict(f"预审已转为办件 {pre['case_number']}", errors=[{"field": "code", "reason": "预审已转为办件"}])
    if pre["status"] == "expired":
        raise Conflict("预审已过期, 材料草稿已删除; 请重新提交预审",
                       errors=[{"field": "code", "reason": "预审已过期"}])


def view(session: Session, code: str) -> dict[str, Any]:
    pre = _load(session, code)
    d = _definition(session, pre["item_code"])
    drafts = _versions(session, pre["id"])
    materials = []
    for m in situations.selected_materials(d, pre["answers"] or {}):
        rows = drafts.get(m.id, [])
        r = rows[-1] if rows else None
        latest = _version_view(r) if r else {}
        materials.append({"id": m.id, "name": m.name, "uploaded": r is not None,
                          "file_name": latest.get("file_name"), "version": latest.get("version"),
                          "uploaded_at": latest.get("uploaded_at"), "verdict": latest.get("verdict"),
                          "verdict_label": latest.get("verdict_label"), "comment": latest.get("comment"),
                          "reviewed_at": latest.get("reviewed_at"),
                          "can_upload": pre["status"] in ("open", "reviewed") and (r is None or r["verdict"] == "redo"),
                          "earlier": [_version_view(x) for x in reversed(rows[:-1])]})
    return {"code": pre["code"], "item_code": d.code, "item_name": d.name, "status": pre["status"],
            "status_label": STATUS_LABELS[pre["status"]],
            "case_number": pre["case_number"], "answers": situations.describe(d, pre["answers"] or {}),
            "materials": materials}


def resubmit(session: Session, code: str, drafts: dict[str, tuple[str, bytes]], *,
             store: ObjectStore | None = None) -> dict[str, Any]:
    """The applicant, with the 预审码, uploads again the drafts the clerk marked 需修改 (or sends
    one not sent before): each a new version back to 待预审; the earlier one and its comment stay.
    A material passed (合格) or still waiting for the clerk is refused, and then nothing changes."""
    pre = _load(session, code, lock=True)
    _open(pre)
    d = _definition(session, pre["item_code"])
    latest = {mid: rows[-1] for mid, rows in _versions(session, pre["id"]).items()}
    wanted = {m.id for m in situations.selected_materials(d, pre["answers"] or {})}
    for mid in drafts:
        r = latest.get(mid)
        if mid in wanted and r is not None and r["verdict"] != "redo":
            why = "已预审合格, 无需重新上传" if r["verdict"] == "ok" else "正在等待预审, 请待窗口意见后再上传"
            raise Conflict(why, errors=[{"field": f"drafts.{mid}", "reason": why}])
    kinds = _check_drafts(d, wanted, drafts)
    stored = _store(drafts, kinds, store or get_store())
    _insert(session, pre["id"], drafts, stored, {mid: r["version"] for mid, r in latest.items()})
    session.execute(sa.update(T_PRE).where(T_PRE.c.id == pre["id"]).values(status="open", updated_at=now()))
    return view(session, code)


def _require_counter(session: Session, actor: Actor, item_code: str) -> None:
    if "clerk" not in actor.roles or actor.counter_id is None:
        raise Forbidden("预审须由窗口收件人员办理", missing=["role:clerk"])
    if not directory.counter_roles(session, actor.counter_id, item_code) & {"intake", "competent"}:
        raise Forbidden("本窗口不受理该事项", missing=["item_role:intake"])


def review(session: Session, actor: Actor, code: str, material_id: str, verdict: str,
           comment: str | None) -> dict[str, Any]:
    """The clerk's word on the latest draft of a material."""
    pre = _load(session, code, lock=True)
    _require_counter(session, actor, pre["item_code"])
    _open(pre)
    if verdict not in VERDICTS:
        raise InvalidInput("verdict", "须为 ok (合格) 或 redo (需修改)")
    if verdict == "redo" and not (comment or "").strip():
        raise InvalidInput("comment", "需修改的材料须说明修改意见")
    rows = _versions(session, pre["id"]).get(material_id)
    if not rows:
        raise NotFound(f"预审没有材料 '{material_id}' 的草稿")
    session.execute(sa.update(T_DRAFT).where(T_DRAFT.c.id == rows[-1]["id"]).values(
        verdict=verdict, comment=(comment or "").strip()[:500] or None, reviewer=actor.name[:60],
        reviewed_at=now()))
    pending = session.execute(sa.select(sa.func.count()).select_from(T_DRAFT).where(
        T_DRAFT.c.prereview_id == pre["id"], T_DRAFT.c.verdict.is_(None))).scalar_one()
    session.execute(sa.update(T_PRE).where(T_PRE.c.id == pre["id"]).values(
        status="open" if pending else "reviewed", updated_at=now()))
    return view(session, code)


def _read(store: ObjectStore, bucket: str, key: str) -> bytes:
    try:
        return b"".join(store.get(bucket, key))
    except StoreUnavailable as exc:
        raise scans.store_unavailable(exc) from exc
    except ObjectMissing:
        raise NotFound("草稿文件已删除") from None


def to_case(session: Session, actor: Actor, code: str, applicant: dict[str, Any], *,
            store: ObjectStore | None = None) -> tuple[CaseRow, str]:
    """Intake from a pre-review: the case takes its 情形, its phone as the applicant's contact
    (unless the clerk typed another) and every latest draft the clerk passed as a scanned page of
    that material (received); the rest is checked in at the counter as usual. The drafts' objects
    go with the next purge (``engine.prereview_purge``), the case holding its own copies."""
    store = store or get_store()
    pre = _load(session, code, lock=True)
    _require_counter(session, actor, pre["item_code"])
    _open(pre)
    passed = [rows[-1] for rows in _versions(session, pre["id"]).values() if rows[-1]["verdict"] == "ok"]
    contact = {"phone": pre["phone"]} if pre["phone"] and PHONE.match(pre["phone"]) else {}
    case, query_code = intake.create_case(session, actor, pre["item_code"], {**contact, **applicant}, {}, None,
                                          situation=pre["answers"] or {}, prereview=pre["code"])
    for r in passed:
        scans.add_page(session, case["number"], r["material_id"], _read(store, r["bucket"], r["key"]),
                       r["file_name"], actor, store=store)
    session.execute(sa.update(T_PRE).where(T_PRE.c.id == pre["id"]).values(
        status="converted", case_number=case["number"], updated_at=now()))
    return case, query_code


def clerk_view(session: Session, actor: Actor, code: str) -> dict[str, Any]:
    """The pre-review as a clerk of a counter taking the item sees it: the applicant's phone too."""
    pre = _load(session, code)
    _require_counter(session, actor, pre["item_code"])
    return {**view(session, code), "phone": pre["phone"], "created_at": pre["created_at"]}


def draft_file(session: Session, actor: Actor, code: str, material_id: str, version: int | None = None, *,
               store: ObjectStore | None = None) -> tuple[str, bytes]:
    """One draft's file (the latest, or an earlier ``version``), for the clerk reviewing it."""
    pre = _load(session, code)
    _require_counter(session, actor, pre["item_code"])
    rows = _versions(session, pre["id"]).get(material_id, [])
    row = rows[-1] if rows and version is None else next((r for r in rows if r["version"] == version), None)
    if row is None:
        raise NotFound(f"预审没有材料 '{material_id}' 的草稿" + (f"第 {version} 版" if version else ""))
    if row["key"] is None:
        raise NotFound("草稿文件已删除 (已转为办件或已过期)")
    return row["file_name"], _read(store or get_store(), row["bucket"], row["key"])


def for_counter(session: Session, actor: Actor, limit: int = 50) -> list[dict[str, Any]]:
    """The open pre-reviews of the items the clerk's counter takes, newest first."""
    if actor.counter_id is None:
        return []
    codes = directory.counter_item_codes(session, actor.counter_id)
    if not codes:
        return []
    rows = session.execute(sa.select(T_PRE.c.code, T_PRE.c.item_code, T_PRE.c.status, T_PRE.c.created_at)
                           .where(T_PRE.c.item_code.in_(codes), T_PRE.c.status.in_(("open", "reviewed")))
                           .order_by(T_PRE.c.created_at.desc()).limit(limit)).all()
    names = {it["code"]: it["name"] for it in catalog.list_items(session)}
    return [{"code": c, "item_code": item, "item_name": names.get(item, item), "status": s,
             "status_label": STATUS_LABELS[s], "created_at": at} for c, item, s, at in rows]
