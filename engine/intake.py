"""收件: creating a case at a counter, its material checklist, and (re)assignment."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.clock import now
from engine import catalog, certfields, certificates, deadlines, documents, search, sequences, situations, workdays
from engine.actors import Actor
from engine.advance import (
    append_event,
    enqueue_documents,
    holder_counters,
    load_case,
    require_holder,
    status_code,
    sync_holders,
)
from engine.directory import resolve_parties
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.history import chain
from engine.materials import MATERIAL_STATUSES, defer_material
from storage.rows import CaseRow, MaterialRowUpdate, NewHistoryEvent
from storage.tables import T_CASE, T_HIST, T_MAT

QUERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def hash_query_code(number: str, code: str) -> str:
    return hashlib.sha256(f"{number}:{code.upper()}".encode()).hexdigest()


def _next_number(session: Session, region: str, day: date) -> str:
    """A case number unique across regions: region code, date, and a per-region daily sequence."""
    # The upsert, not an update then an insert: the first two intakes of a day in a region would
    # both insert the day's row, and one of them fail.
    value = sequences.bump(session, f"case:{region}:{day:%Y%m%d}")
    return f"{region}{day:%Y%m%d}{value:05d}"


def create_case(session: Session, actor: Actor, item_code: str, applicant: dict[str, Any],
                materials: dict[str, str], competent_region: str | None = None,
                mode: str | None = None, commitment: dict[str, Any] | None = None,
                defer: list[dict[str, Any]] | None = None,
                situation: dict[str, str] | None = None, prereview: str | None = None) -> tuple[CaseRow, str]:
    """Take in an application (收件). Returns the case row and the applicant's query code.
    ``situation`` answers the item's 情形 questions; the case then needs exactly their materials.
    ``prereview``: the 预审码 the application came from (its intake event says so)."""
    if "clerk" not in actor.roles or actor.counter_id is None:
        raise Forbidden("收件须由窗口收件人员办理", missing=["role:clerk"])
    try:
        version = catalog.latest_version(session, item_code)
    except NotFound:  # a field of the request, not the resource addressed: 422, naming it
        raise InvalidInput("item_code", f"事项 {item_code} 不存在") from None
    item = catalog.compiled(session, version.id)
    d = item.definition
    certfields.check_applicant(d, applicant)
    parties = resolve_parties(session, d, actor.counter_id, competent_region)
    if mode is None:
        cross = parties.competent.region_code != parties.intake.region_code
        mode = "异地代收代办" if cross and "异地代收代办" in d.modes else d.modes[0]
    elif mode not in d.modes:
        raise InvalidInput("mode", f"该事项不支持「{mode}」, 支持: {'、'.join(d.modes)}")
    answers = situations.check_answers(d, situation)
    needed = situations.selected_materials(d, answers)
    known = {m.id for m in needed}
    for mid, status in materials.items():
        if mid not in known:
            raise InvalidInput(f"materials.{mid}", "所选情形不需要此材料" if any(
                m.id == mid for m in d.materials) else "事项没有此材料")
        if status not in ("missing", "received"):
            raise InvalidInput(f"materials.{mid}", "状态须为 missing 或 received (容缺请用 defer)")
    at = now()
    cal = workdays.calendar(session)
    deferred = {e["material_id"]: e for e in
                (defer_material(item, x, f"defer[{i}]", at, cal) for i, x in enumerate(defer or []))}
    if extra := sorted(set(deferred) - known):
        raise InvalidInput("defer", f"所选情形不需要材料 {'、'.join(extra)}")
    today = clock.local_date(at)  # the counter's day, not UTC's: 07:30 Beijing is still today
    # 免提交: a certificate the applicant already holds stands in for the scan of that material.
    library = certificates.from_library(session, needed, applicant, today)
    materials = {**materials, **{mid: "received" for mid in library}}
    number = _next_number(session, parties.intake.region_code, today)
    code = "".join(secrets.choice(QUERY_ALPHABET) for _ in range(10))
    # id, status_code and last_hash are filled in below (status_code reads only the state, chain
    # only number and last_hash). The decision periods start at 受理 (engine.deadlines), not here.
    case: CaseRow = {  # type: ignore[typeddict-item]
        "number": number, "item_version_id": version.id, "item_code": d.code, "mode": mode,
        "state": item.initial, "branches": None, "intake_counter_id": parties.intake.id,
        "competent_counter_id": parties.competent.id, "parties": parties.by_role,
        "assignees": {}, "companion_id": actor.id, "applicant": applicant,
        "query_code_hash": hash_query_code(number, code), "commitment": commitment,
        "created_at": at, "updated_at": at, "finished_at": None, "version": 1,
        "promised_due": None, "legal_due": None, "accepted_at": None, "certificate_due": None,
        "extended_days": 0, "clock_paused_at": None, "paused_days": None, "deadline_status": None,
        **deadlines.at_intake(cal, at),
    }
    case["status_code"] = status_code(item, case, bool(deferred))
    event: NewHistoryEvent = {
        "seq": 1, "at": at, "kind": "intake", "actor_id": actor.id, "actor_name": actor.name,
        "counter_id": actor.counter_id, "to_state": item.initial,
        "data": {"item_version": version.version, "mode": mode, "parties": parties.by_role,
                 "deferred": sorted(deferred), **({"library": library} if library else {}),
                 **({"situation": answers} if answers else {}),
                 **({"prereview": prereview} if prereview else {})}}
    case["last_hash"] = None
    chain(case, [event])
    case["id"] = session.execute(sa.insert(T_CASE).values(**case).returning(T_CASE.c.id)).scalar_one()
    search.index_case(session, case["id"], case["number"], applicant, parties.by_role)  # same transaction
    if needed:
        # Every row with the same keys: an executemany takes its columns from the first row, so a
        # 容缺 promise on a later row was dropped.
        session.execute(sa.insert(T_MAT), [
            {"case_id": case["id"], "material_id": m.id, "status": materials.get(m.id, "missing"),
             "promise": None, "deferred_due": None, "updated_at": at, **deferred.get(m.id, {})}
            for m in needed
        ])
    session.execute(sa.insert(T_HIST).values(case_id=case["id"], **event))
    sync_holders(session, case["id"], holder_counters(item, case))
    # 收件凭证: the only notice that may carry the query code, which exists in clear only here.
    enqueue_documents(session, case, documents.issue_at(
        session, item, case, [{**event, "case_id": case["id"]}], actor, query_code=code), at)
    return case, code


def set_material(session: Session, number: str, actor: Actor, material_id: str, status: str,
                 expected_version: int | None = None, promise: str | None = None) -> CaseRow:
    """A clerk checks a material in (received), out (missing), or defers it under a promise."""
    case = load_case(session, number)
    item = require_holder(session, case, actor)
    at = now()
    update: MaterialRowUpdate
    if material_id not in {m.id for m in item.definition.materials}:  # the path names it: 404
        raise NotFound(f"事项没有材料 '{material_id}'")
    if status == "deferred":
        update = defer_material(item, {"material": material_id, "promise": promise}, "body", at,
                                workdays.calendar(session))
    elif status in ("missing", "received"):
        update = {"material_id": material_id, "status": status, "promise": None,
                  "deferred_due": None, "updated_at": at}
    else:
        raise InvalidInput("status", f"须为 {' / '.join(MATERIAL_STATUSES)}")
    append_event(session, case, expected_version, at, "material", actor,
                 {"material": material_id, "status": status, "promise": promise})
    session.execute(sa.update(T_MAT).where(T_MAT.c.case_id == case["id"],
                                           T_MAT.c.material_id == material_id).values(**update))
    return case

