"""Read models: a case as a clerk sees it (with what they may do now and why not), queues, history."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from engine import catalog, certfields, deadlines, situations
from engine.actors import Actor
from engine.advance import describe_missing, holder_counters, names_for, why_forbidden
from engine.certificates import taken_from_library
from engine.errors import InvalidInput
from engine.guards import Guards
from states.compiler import CompiledItem
from storage.rows import CaseRow
from storage.tables import T_CASE, T_HIST, T_HOLD, ItemVersion

STATUS_LABELS = {
    1: "已接件", 2: "已撤件", 3: "已受理", 4: "不受理", 5: "不予受理", 6: "补正开始", 7: "补正结束",
    8: "部门开始办理", 9: "特别程序开始", 10: "特别程序结束", 11: "办结(通过)", 12: "办结(容缺通过)",
    13: "办结(不通过)", 14: "撤回", 15: "撤销",
}


def state_ref(item: CompiledItem, state: str) -> dict[str, str]:
    """A state as lists show it: its id and the item's own label (审核, 证照已制发 …)."""
    return {"id": state, "label": item.table[state].state.label}


def status_ref(code: int) -> dict[str, Any]:
    """The national 办件 status (1–15) with its label, as every answer shows it."""
    return {"code": code, "label": STATUS_LABELS[code]}


def triggers_for(item: CompiledItem, case: CaseRow, actor: Actor, guards: Guards) -> list[dict[str, Any]]:
    """Every trigger leaving the case's current states, open or not, and why."""
    found = [(trigger, t, why_forbidden(item, case, src, t, actor))
             for name in item.active_names(case["state"], case["branches"])
             for (trigger, src), t in item.routes.items() if src == name and not t.auto]
    names = names_for(guards.session, [m for _, _, missing in found for m in missing])
    out = []
    for trigger, t, missing in found:
        reasons = [describe_missing(missing, *names)] if missing else []
        # comment_given depends on the request itself: report it as a requirement, not a block.
        reasons += [r for g in item.guards_of(t) if g != "comment_given" and (r := guards.why_closed(g, t.dest))]
        out.append({"trigger": trigger, "label": t.label, "to": t.dest, "open": not reasons,
                    "reasons": reasons, "comment_required": "comment_given" in t.guards,
                    "certificate_fields": certfields.approval_form(item.definition, trigger)})
    return out


def _from_library(session: Session, case: CaseRow) -> dict[str, dict[str, str]]:
    """免提交: the certificates intake took from the library, by material."""
    data = session.execute(sa.select(T_HIST.c.data).where(
        T_HIST.c.case_id == case["id"], T_HIST.c.kind == "intake")).scalar_one_or_none()
    return taken_from_library(data)


def case_view(session: Session, case: CaseRow, actor: Actor | None) -> dict[str, Any]:
    item = catalog.compiled(session, case["item_version_id"])
    d = item.definition
    state = item.table[case["state"]].state
    guards = Guards(session, item, case, {})
    library = _from_library(session, case) if any(m.library for m in d.materials) else {}
    optional = situations.conditional(d)
    materials = [
        {"id": m.id, "name": m.name, "required": m.required, "deferrable": m.deferrable,
         "status": guards.materials.get(m.id, {}).get("status", "missing"),
         "promise": guards.materials.get(m.id, {}).get("promise"),
         "deferred_due": guards.materials.get(m.id, {}).get("deferred_due"),
         "library": library.get(m.id) if guards.materials.get(m.id, {}).get("status") == "received" else None}
        for m in d.materials
        if m.id in guards.materials or m.id not in optional  # 事项情形: only the answers' materials
    ]
    branches = [
        {"id": b.id, "label": b.label, "counter": case["parties"][b.holder],
         "state": case["branches"][b.id],
         "state_label": item.table[f"{case['state']}.{b.id}.{case['branches'][b.id]}"].state.label,
         "done": item.table[f"{case['state']}.{b.id}.{case['branches'][b.id]}"].state.final}
        for b in state.parallel or []
    ] if case["branches"] else []
    view = {
        "number": case["number"],
        "item": {"code": d.code, "name": d.name, "version": d.version},
        "mode": case["mode"],
        "state": {"id": case["state"], "label": state.label, "final": state.final,
                  "clock": state.clock, "video": state.video},
        "branches": branches,
        "status": status_ref(case["status_code"]),
        "intake_counter": case["intake_counter_id"],
        "competent_counter": case["competent_counter_id"],
        "parties": case["parties"],
        "holders": holder_counters(item, case),
        # 一事一人: the companion clerk (intake steps) and, per holding counter, who claimed its step.
        "companion_id": case.get("companion_id"),
        "assignees": case["assignees"],
        "applicant": case["applicant"],
        "commitment": case["commitment"],  # 告知承诺: who signed, when, what
        "materials": materials,
        # 事项情形: the answers intake recorded, read as the situation_path guard reads them.
        "situation": situations.describe(d, guards.situation) if d.situations else [],
        # engine.deadlines: before 受理 the five days to notify missing materials run; from 受理 the
        # decision periods; the clock stops in 补正 and 特别程序; 正常/预警/逾期 from the sweep.
        "deadlines": {"supplement_notice": case.get("supplement_notice_due"),
                      "accepted_at": case.get("accepted_at"),
                      "promised": case["promised_due"], "legal": case["legal_due"],
                      "certificate": case.get("certificate_due"),
                      "extended_days": case.get("extended_days") or 0,
                      "provisional": bool(case.get("deadline_provisional")),
                      "status": case.get("deadline_status"),
                      "paused_since": case.get("clock_paused_at"),
                      "paused_days": case.get("paused_days") or 0},
        "created_at": case["created_at"], "updated_at": case["updated_at"],
        "finished_at": case["finished_at"],
        "version": case["version"],
    }
    if actor is not None:
        view["triggers"] = triggers_for(item, case, actor, guards)  # reuses the materials read above
    return view


def history(session: Session, case_id: int, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """The case's events in order, those after the event ``after`` (its seq), at most ``limit``."""
    q = sa.select(T_HIST).where(T_HIST.c.case_id == case_id, T_HIST.c.seq > after).order_by(T_HIST.c.seq)
    rows = session.execute(q if limit is None else q.limit(limit)).mappings()
    return [{k: v for k, v in r.items() if k not in ("id", "case_id")} for r in rows]


def encode_cursor(case_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": case_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return int(json.loads(raw)["after"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("cursor", "分页游标无效") from exc


def queue_entry(session: Session, r: Any, item_name: str, counter_id: str | None, today: date) -> dict[str, Any]:
    """One case as the queue and the search list it: state and status, deadlines, who holds it."""
    due = r["promised_due"] or r["supplement_notice_due"]
    return {
        "number": r["number"], "item_code": r["item_code"], "item_name": item_name,
        "state": state_ref(catalog.compiled(session, r["item_version_id"]), r["state"]),
        "status": status_ref(r["status_code"]),
        "promised_due": r["promised_due"], "legal_due": r["legal_due"],
        "supplement_notice_due": r["supplement_notice_due"],
        "provisional": bool(r["deadline_provisional"]),
        "overdue": bool(due and r["finished_at"] is None and due < today),
        "assignee": (r["assignees"] or {}).get(counter_id or ""), "companion_id": r["companion_id"],
        "version": r["version"],
    }


def queue(session: Session, counter_id: str, *, state: str | None = None, item: str | None = None,
          assignee: int | None = None, overdue: bool | None = None, cursor: str | None = None,
          limit: int = 50, today: date | None = None) -> dict[str, Any]:
    """A counter's queue: cases it holds now, oldest first, keyset-paginated by case id."""
    q = (sa.select(T_CASE.c.id, T_CASE.c.number, T_CASE.c.item_code, T_CASE.c.state,
                   T_CASE.c.status_code, T_CASE.c.promised_due, T_CASE.c.legal_due,
                   T_CASE.c.supplement_notice_due, T_CASE.c.deadline_provisional,
                   T_CASE.c.assignees, T_CASE.c.companion_id, T_CASE.c.updated_at, T_CASE.c.version,
                   T_CASE.c.item_version_id, T_CASE.c.finished_at, ItemVersion.name)
         .join(T_HOLD, T_HOLD.c.case_id == T_CASE.c.id)
         .join(ItemVersion, ItemVersion.id == T_CASE.c.item_version_id)
         .where(T_HOLD.c.counter_id == counter_id))
    if state:
        q = q.where(T_CASE.c.state == state)
    if item:
        q = q.where(T_CASE.c.item_code == item)
    today = today or clock.today()
    running_due = deadlines.running_due()
    if overdue is True:
        q = q.where(running_due < today)
    elif overdue is False:
        q = q.where(sa.or_(running_due.is_(None), running_due >= today))
    if cursor:
        q = q.where(T_CASE.c.id > decode_cursor(cursor))
    rows = session.execute(q.order_by(T_CASE.c.id).limit(limit + (assignee is None and 1 or 10_000)))
    items = []
    for r in rows.mappings():
        # A clerk's own work: the steps they claimed here, and the cases they accompany.
        if assignee is not None and assignee not in (r["assignees"].get(counter_id), r["companion_id"]):
            continue
        items.append({**queue_entry(session, r, r["name"], counter_id, today), "_id": r["id"]})
        if len(items) > limit:
            break
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(items[-1]["_id"]) if more and items else None
    for it in items:
        del it["_id"]
    return {"items": items, "next_cursor": next_cursor}
