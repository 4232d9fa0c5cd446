"""要件预审: before an application, the applicant uploads drafts against the item's material list
for their 情形 with a phone number; a clerk of a counter taking the item comments per material.
No case number and no clock: nothing runs until intake, where the pre-review becomes a case with
the drafts the clerk passed carried over as its scanned materials."""

from __future__ import annotations

import io
import secrets
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine import catalog, directory, intake, scans, situations
from engine.actors import Actor
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.intake import QUERY_ALPHABET
from engine.scan_validation import check_name, sniff
from storage.prereview_tables import T_DRAFT, T_PRE
from storage.rows import CaseRow

VERDICTS = {"ok": "合格", "redo": "需修改"}
STATUS_LABELS = {"open": "待预审", "reviewed": "已预审", "converted": "已转为办件"}
PHONE_CHARS = set("0123456789-+ ")
MAX_BODY_BYTES = 8 * 1024 * 1024  # one submission's drafts together (photos from a phone)
MAX_DRAFT_BYTES = 4 * 1024 * 1024


def _definition(session: Session, code: str) -> Any:
    try:
        return catalog.compiled(session, catalog.latest_version(session, code).id).definition
    except NotFound:
        raise InvalidInput("item_code", f"事项 {code} 不存在") from None


def submit(session: Session, item_code: str, phone: str, answers: dict[str, str],
           drafts: dict[str, tuple[str, bytes]]) -> str:
    """Store a pre-review; returns its 预审码 (the only key to it the applicant holds)."""
    d = _definition(session, item_code)
    answers = situations.check_answers(d, answers)
    if not 6 <= len(phone) <= 20 or not set(phone) <= PHONE_CHARS:
        raise InvalidInput("phone", "须为 6–20 位电话号码")
    wanted = {m.id: m for m in situations.selected_materials(d, answers)}
    if not drafts:
        raise InvalidInput("drafts", "至少上传一份材料草稿")
    limit = min(get_settings().max_upload_bytes, MAX_DRAFT_BYTES)
    for mid, (name, data) in drafts.items():
        if mid not in wanted:
            raise InvalidInput(f"drafts.{mid}", "所选情形不需要此材料")
        check_name(name, f"drafts.{mid}.name")
        if len(data) > limit:
            raise InvalidInput(f"drafts.{mid}", f"超过 {limit} 字节")
        if sniff(data[:16]) is None:
            raise InvalidInput(f"drafts.{mid}", "须为 JPEG、PNG、TIFF 或 PDF 文件")
    at = now()
    code = "".join(secrets.choice(QUERY_ALPHABET) for _ in range(12))
    pid = session.execute(sa.insert(T_PRE).values(
        code=code, item_code=d.code, phone=phone, answers=answers, status="open", case_number=None,
        created_at=at, updated_at=at).returning(T_PRE.c.id)).scalar_one()
    session.execute(sa.insert(T_DRAFT), [
        {"prereview_id": pid, "material_id": mid, "file_name": name, "data": data}
        for mid, (name, data) in drafts.items()])
    return code


def _load(session: Session, code: str, lock: bool = False) -> dict[str, Any]:
    q = sa.select(T_PRE).where(T_PRE.c.code == code.upper()[:16])
    row = session.execute(q.with_for_update() if lock else q).mappings().one_or_none()
    if row is None:
        raise NotFound("没有这个预审码")
    return dict(row)


def view(session: Session, code: str) -> dict[str, Any]:
    pre = _load(session, code)
    d = _definition(session, pre["item_code"])
    drafts = {r["material_id"]: r for r in session.execute(
        sa.select(T_DRAFT.c.material_id, T_DRAFT.c.file_name, T_DRAFT.c.verdict, T_DRAFT.c.comment)
        .where(T_DRAFT.c.prereview_id == pre["id"])).mappings()}
    materials = []
    for m in situations.selected_materials(d, pre["answers"] or {}):
        r = drafts.get(m.id)
        materials.append({"id": m.id, "name": m.name, "uploaded": r is not None,
                          "file_name": r["file_name"] if r else None,
                          "verdict": r["verdict"] if r else None,
                          "verdict_label": VERDICTS.get(r["verdict"] or "") if r else None,
                          "comment": r["comment"] if r else None})
    return {"code": pre["code"], "item_code": d.code, "item_name": d.name, "status": pre["status"],
            "status_label": STATUS_LABELS[pre["status"]],
            "case_number": pre["case_number"], "answers": situations.describe(d, pre["answers"] or {}),
            "materials": materials}


def _require_counter(session: Session, actor: Actor, item_code: str) -> None:
    if "clerk" not in actor.roles or actor.counter_id is None:
        raise Forbidden("预审须由窗口收件人员办理", missing=["role:clerk"])
    if not directory.counter_roles(session, actor.counter_id, item_code) & {"intake", "competent"}:
        raise Forbidden("本窗口不受理该事项", missing=["item_role:intake"])


def review(session: Session, actor: Actor, code: str, material_id: str, verdict: str,
           comment: str | None) -> dict[str, Any]:
    pre = _load(session, code, lock=True)
    _require_counter(session, actor, pre["item_code"])
    if pre["status"] == "converted":
        raise InvalidInput("code", "预审已转为办件")
    if verdict not in VERDICTS:
        raise InvalidInput("verdict", "须为 ok (合格) 或 redo (需修改)")
    if verdict == "redo" and not (comment or "").strip():
        raise InvalidInput("comment", "需修改的材料须说明修改意见")
    done = session.execute(sa.update(T_DRAFT).where(
        T_DRAFT.c.prereview_id == pre["id"], T_DRAFT.c.material_id == material_id).values(
        verdict=verdict, comment=(comment or "").strip()[:500] or None, reviewer=actor.name[:60],
        reviewed_at=now())).rowcount
    if not done:
        raise NotFound(f"预审没有材料 '{material_id}' 的草稿")
    session.execute(sa.update(T_PRE).where(T_PRE.c.id == pre["id"]).values(status="reviewed", updated_at=now()))
    return view(session, code)


def to_case(session: Session, actor: Actor, code: str, applicant: dict[str, Any]) -> tuple[CaseRow, str]:
    """Intake from a pre-review: the case takes its 情形 and every draft the clerk passed as a
    scanned page of that material (received); the rest is checked in at the counter as usual."""
    pre = _load(session, code, lock=True)
    _require_counter(session, actor, pre["item_code"])
    if pre["status"] == "converted":
        raise InvalidInput("code", f"预审已转为办件 {pre['case_number']}")
    passed = session.execute(sa.select(T_DRAFT.c.material_id, T_DRAFT.c.file_name, T_DRAFT.c.data).where(
        T_DRAFT.c.prereview_id == pre["id"], T_DRAFT.c.verdict == "ok")).all()
    case, query_code = intake.create_case(session, actor, pre["item_code"], applicant, {}, None,
                                          situation=pre["answers"] or {})
    for mid, name, data in passed:
        scans.add_page(session, case["number"], mid, io.BytesIO(data), name, actor)
    session.execute(sa.update(T_PRE).where(T_PRE.c.id == pre["id"]).values(
        status="converted", case_number=case["number"], updated_at=now()))
    return case, query_code


def clerk_view(session: Session, actor: Actor, code: str) -> dict[str, Any]:
    """The pre-review as a clerk of a counter taking the item sees it: the applicant's phone too."""
    pre = _load(session, code)
    _require_counter(session, actor, pre["item_code"])
    return {**view(session, code), "phone": pre["phone"], "created_at": pre["created_at"]}


def draft_file(session: Session, actor: Actor, code: str, material_id: str) -> tuple[str, bytes]:
    """One draft's file, for the clerk reviewing it."""
    pre = _load(session, code)
    _require_counter(session, actor, pre["item_code"])
    row = session.execute(sa.select(T_DRAFT.c.file_name, T_DRAFT.c.data).where(
        T_DRAFT.c.prereview_id == pre["id"], T_DRAFT.c.material_id == material_id)).one_or_none()
    if row is None:
        raise NotFound(f"预审没有材料 '{material_id}' 的草稿")
    return row[0], row[1]


def for_counter(session: Session, actor: Actor, limit: int = 50) -> list[dict[str, Any]]:
    """The open pre-reviews of the items the clerk's counter takes, newest first."""
    if actor.counter_id is None:
        return []
    codes = directory.counter_item_codes(session, actor.counter_id)
    if not codes:
        return []
    rows = session.execute(sa.select(T_PRE.c.code, T_PRE.c.item_code, T_PRE.c.status, T_PRE.c.created_at)
                           .where(T_PRE.c.item_code.in_(codes), T_PRE.c.status != "converted")
                           .order_by(T_PRE.c.created_at.desc()).limit(limit)).all()
    names = {it["code"]: it["name"] for it in catalog.list_items(session)}
    return [{"code": c, "item_code": item, "item_name": names.get(item, item), "status": s,
             "status_label": STATUS_LABELS[s], "created_at": at} for c, item, s, at in rows]

