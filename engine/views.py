"""Read models: a case as a clerk sees it (with what they may do now and why not), queues, history."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.settings import get_settings
from engine import (
    catalog,
    certfields,
    certificates,
    deadlines,
    delivery,
    directory,
    documents,
    labels,
    situations,
    workdays,
)
from engine.actors import Actor
from engine.advance import companion_step, describe_missing, holder_counters, names_for, source_holder, why_forbidden
from engine.certificates import taken_from_library
from engine.errors import InvalidInput
from engine.guards import Guards
from engine.statements import SELECT_EVENT_DATA
from engine.workdays import WorkCalendar
from states import defaults
from states.compiler import CompiledItem
from states.vocabulary import ACTOR_ROLES
from storage.documents import T_EVID
from storage.rows import CaseRow
from storage.tables import T_CASE, T_HIST, T_HOLD, Clerk, Counter, CounterItem, ItemVersion

MEDIA_KINDS = {"recording": "视频环节录像", "waybill": "运单面单"}
STATUS_LABELS = {
    1: "已接件", 2: "已撤件", 3: "已受理", 4: "不受理", 5: "不予受理", 6: "补正开始", 7: "补正结束",
    8: "部门开始办理", 9: "特别程序开始", 10: "特别程序结束", 11: "办结(通过)", 12: "办结(容缺通过)",
    13: "办结(不通过)", 14: "撤回", 15: "撤销",
}


def state_ref(item: CompiledItem, state: str) -> dict[str, str]:
    """A state as lists show it: its id and the item's own label (审核, 证照已制发 …)."""
    return {"id": state, "label": item.table[state].state.label}


def state_tone(item: CompiledItem, state: str) -> str:
    """How a page colours a state's pill: in progress, paused (补正, 特别程序), or the outcome of a
    final state (a final state that names none is an approval, as the national status reads it)."""
    s = item.table[state].state
    if s.final:
        return s.outcome or "approved"
    return "paused" if s.clock == "pause" else "open"


def status_ref(code: int) -> dict[str, Any]:
    """The national 办件 status (1–15) with its label, as every answer shows it."""
    return {"code": code, "label": STATUS_LABELS[code]}


def _leaving(item: CompiledItem, case: CaseRow, actor: Actor) -> list[tuple[str, str, Any, list[str]]]:
    """(trigger, source state, transition, what the actor lacks) of every manual trigger open now."""
    return [(trigger, src, t, why_forbidden(item, case, src, t, actor))
            for name in item.active_names(case["state"], case["branches"])
            for (trigger, src), t in item.routes.items() if src == name and not t.auto]


def triggers_for(item: CompiledItem, case: CaseRow, actor: Actor, guards: Guards) -> list[dict[str, Any]]:
    """Every trigger leaving the case's current states, open or not, and why."""
    found = [(trigger, t, missing) for trigger, _, t, missing in _leaving(item, case, actor)]
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
    row = SELECT_EVENT_DATA.first(session, {"case_id": case["id"], "kind": "intake"})
    return taken_from_library(row["data"] if row else None)


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


def deadline_badge(cal: WorkCalendar, r: Any, today: date, warn_days: int) -> dict[str, Any]:
    """正常/预警/逾期 of the period that runs now, live (the sweep's stored mark lags a day), and
    whether the clock stands still (补正, 特别程序): a paused case is shown as such, not as late."""
    if r.get("finished_at") is not None:
        return {"due": None, "status": None, "paused": False}
    due = r.get("promised_due") or r.get("supplement_notice_due")
    paused = r.get("clock_paused_at") is not None
    status = None if paused else deadlines.status_on(cal, due, today, warn_days)
    legal = r.get("legal_due")
    if not paused and legal is not None and r.get("certificate_due") is None and today > legal:
        status = deadlines.OVERDUE
    return {"due": due, "status": status, "paused": paused}


def queue_entry(session: Session, r: Any, item_name: str, counter_id: str | None, today: date,
                cal: WorkCalendar | None = None, page: bool = False) -> dict[str, Any]:
    """One case as the queue and the search list it: state and status, deadlines, who holds it;
    with ``page``, what the queue page shows beside (applicant, received, the deadline's badge)."""
    due = r["promised_due"] or r["supplement_notice_due"]
    entry = {
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
    if page:
        entry.update(applicant=(r["applicant"] or {}).get("name", ""), received_at=r["created_at"],
                     tone=state_tone(catalog.compiled(session, r["item_version_id"]), r["state"]),
                     finished_at=r["finished_at"],
                     deadline=deadline_badge(cal or workdays.calendar(session), r, today,
                                             get_settings().warn_working_days))
    return entry


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


QUEUE_SORTS = {"received": "收件时间", "due": "期限", "applicant": "申请人", "item": "事项", "state": "状态"}
DEADLINE_FILTERS = ("正常", "预警", "逾期", "暂停")
CLAIM_FILTERS = {"unclaimed": "待认领", "mine": "我的", "others": "他人认领"}
QUEUE_COLUMNS = (T_CASE.c.id, T_CASE.c.number, T_CASE.c.item_code, T_CASE.c.state, T_CASE.c.status_code,
                 T_CASE.c.promised_due, T_CASE.c.legal_due, T_CASE.c.supplement_notice_due,
                 T_CASE.c.deadline_provisional, T_CASE.c.assignees, T_CASE.c.companion_id, T_CASE.c.version,
                 T_CASE.c.item_version_id, T_CASE.c.finished_at, T_CASE.c.applicant, T_CASE.c.created_at,
                 T_CASE.c.clock_paused_at, T_CASE.c.certificate_due, ItemVersion.name)


def _sort_key(sort: str, entry: dict[str, Any]) -> tuple[Any, ...]:
    far = date.max
    if sort == "due":
        return (entry["deadline"]["paused"], entry["deadline"]["due"] or far, entry["received_at"])
    if sort == "applicant":
        return (entry["applicant"], entry["received_at"])
    if sort == "item":
        return (entry["item_name"], entry["received_at"])
    if sort == "state":
        return (entry["state"]["label"], entry["received_at"])
    return (entry["received_at"],)


def unclaimed_first(actor: Actor) -> bool:
    """Whether this clerk's open queue lists unclaimed work first (those who review, approve or
    inspect pick the next case from the top)."""
    return bool(actor.roles & {"reviewer", "approver", "inspector"})


def check_queue_filters(deadline: str | None, claim: str | None) -> None:
    if deadline is not None and deadline not in DEADLINE_FILTERS:
        raise InvalidInput("deadline", "期限筛选须为 正常、预警、逾期 或 暂停")
    if claim is not None and claim not in CLAIM_FILTERS:
        raise InvalidInput("claim", "认领筛选须为 待认领、我的 或 他人认领")


def filter_entries(entries: list[dict[str, Any]], actor: Actor, *, item: str | None = None,
                   state: str | None = None, deadline: str | None = None,
                   claim: str | None = None) -> list[dict[str, Any]]:
    """The queue page's filters over listed entries (``queue_entry(page=True)``): the open list's
    deadline and claim (its item and state go into its query), all four over a search's matches."""
    if item:
        entries = [e for e in entries if e["item_code"] == item]
    if state:
        entries = [e for e in entries if e["state"]["id"] == state]
    if deadline == "暂停":
        entries = [e for e in entries if e["deadline"]["paused"]]
    elif deadline:
        entries = [e for e in entries if e["deadline"]["status"] == deadline]
    if claim == "unclaimed":
        entries = [e for e in entries if e["assignee"] is None]
    elif claim == "mine":
        entries = [e for e in entries if actor.id in (e["assignee"], e["companion_id"])]
    elif claim == "others":
        entries = [e for e in entries if e["assignee"] not in (None, actor.id)]
    return entries


def workbench_queue(session: Session, actor: Actor, counter_id: str, *, finished: bool = False,
                    item: str | None = None, state: str | None = None, deadline: str | None = None,
                    claim: str | None = None, sort: str = "received", descending: bool = False,
                    offset: int = 0, limit: int = 50, today: date | None = None) -> dict[str, Any]:
    """The queue page's list. Open work: what the counter holds now, filtered and sorted as the
    clerk asks, unclaimed work first for a clerk who reviews or approves (they pick the next case
    from the top). 已办结: the counter's finished cases (it took them in or decided them), newest first.
    A counter holds a bounded number of open cases, so they are sorted here, on every column."""
    if sort not in QUEUE_SORTS:
        raise InvalidInput("sort", "没有这种排序方式")
    check_queue_filters(deadline, claim)
    today = today or clock.today()
    cal = workdays.calendar(session)
    base = sa.select(*QUEUE_COLUMNS).join(ItemVersion, ItemVersion.id == T_CASE.c.item_version_id)
    if item:
        base = base.where(T_CASE.c.item_code == item)
    if state:
        base = base.where(T_CASE.c.state == state)
    if finished:
        q = (base.where(T_CASE.c.finished_at.is_not(None),
                        sa.or_(T_CASE.c.intake_counter_id == counter_id, T_CASE.c.competent_counter_id == counter_id))
             .order_by(T_CASE.c.finished_at.desc(), T_CASE.c.id.desc()).offset(offset).limit(limit + 1))
        entries = [queue_entry(session, r, r["name"], counter_id, today, cal, page=True)
                   for r in session.execute(q).mappings()]
        return {"items": entries[:limit], "more": len(entries) > limit, "total": None}
    rows = session.execute(base.join(T_HOLD, T_HOLD.c.case_id == T_CASE.c.id)
                           .where(T_HOLD.c.counter_id == counter_id)).mappings().all()
    entries = filter_entries([queue_entry(session, r, r["name"], counter_id, today, cal, page=True) for r in rows],
                             actor, deadline=deadline, claim=claim)
    entries.sort(key=lambda e: _sort_key(sort, e), reverse=descending)
    if unclaimed_first(actor):
        entries.sort(key=lambda e: e["assignee"] is not None)  # stable: the chosen order within each part
    return {"items": entries[offset:offset + limit], "more": len(entries) > offset + limit, "total": len(entries)}


def page_actions(session: Session, item: CompiledItem, case: CaseRow, actor: Actor,
                 triggers: list[dict[str, Any]]) -> dict[str, Any]:
    """The case page's split of ``triggers``: what this clerk can do (a button each, closed only
    by a condition of the case such as a missing material, with the reason), the 退回 targets
    (one form), and what others will do next (text naming the counter, not a dead button)."""
    by_trigger = {t["trigger"]: t for t in triggers}
    leaving = _leaving(item, case, actor)
    counters = directory.counter_names(session, [source_holder(item, case, src) for _, src, _, _ in leaving]
                                       + [case["intake_counter_id"]])
    clerks = directory.clerk_names(session, [*case["assignees"].values(), case.get("companion_id")])
    mine, backs, others = [], [], []
    for trigger, src, t, missing in leaving:
        entry = by_trigger[trigger]
        if not missing:
            (backs if defaults.is_send_back(t) else mine).append(entry)
            continue
        if set(t.roles) <= {"system"}:
            others.append(f"系统自动完成: {t.label}")
            continue
        withdraws = item.table[t.dest].state.outcome == "withdrawn"
        holder = case["intake_counter_id"] if withdraws else source_holder(item, case, src)
        where = counters.get(holder, "其他窗口")
        who = (clerks.get(case.get("companion_id") or 0) if withdraws or companion_step(item, src)
               else clerks.get(case["assignees"].get(holder) or 0))
        roles = "或".join(ACTOR_ROLES.get(r, r) for r in t.roles if r not in ("system", "applicant"))
        by = f" {who}" if who else f" ({roles})" if roles else ""
        line = f"{where}{by}: {t.label}"
        if withdraws and "applicant" in t.roles:
            line += " (申请人也可在进度查询页撤回)"
        if line not in others:
            others.append(line)
    return {"mine": mine, "send_back": [b for b in backs if b["open"]], "others": others}


def colleagues(session: Session, counter_id: str, roles: set[str]) -> list[dict[str, Any]]:
    """Active clerks of a counter holding one of ``roles``: whom a step can be handed to."""
    rows = session.execute(sa.select(Clerk.id, Clerk.name, Clerk.roles)
                           .where(Clerk.counter_id == counter_id, Clerk.active.is_(True)).order_by(Clerk.id)).all()
    return [{"id": i, "name": n} for i, n, r in rows if set(r.split(",")) & roles]


def case_results(session: Session, case: CaseRow, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the case produced, to link on its page: certificates (with their verification page),
    waybills and their tracking, recordings and captures of its video steps, and the checklists
    filled in them (kept with the transition they fired)."""
    certs = [{"number": c.number, "title": c.title, "revoked": c.revoked_at is not None}
             for c in certificates.of_case(session, case["id"])]
    waybills = [{"number": w.number, "carrier": w.carrier, "status": delivery.STATUSES.get(w.status, "其他"),
                 "tracking": [{"at": e.at, "status": delivery.STATUSES.get(e.status, "其他"), "location": e.location,
                               "note": e.note} for e in delivery.tracking_events(session, w.id or 0)]}
                for w in delivery.waybills_of(session, case["id"])]
    evidence = session.execute(sa.select(T_EVID.c.id, T_EVID.c.kind, T_EVID.c.media_type, T_EVID.c.stored_at)
                               .where(T_EVID.c.case_id == case["id"], T_EVID.c.kind.in_(list(MEDIA_KINDS)))
                               .order_by(T_EVID.c.id)).mappings().all()
    media = [{"id": r["id"], "label": MEDIA_KINDS[r["kind"]], "at": r["stored_at"]} for r in evidence]
    checklists = []
    for e in events:
        record = (e.get("data") or {}).get("checklist")
        if e["kind"] == "transition" and isinstance(record, dict):
            checklists.append({"at": e["at"], "passed": record.get("result") == "passed",
                               "items": [{"label": i.get("label", ""), "ok": bool(i.get("ok")), "note": i.get("note")}
                                         for i in record.get("items", [])]})
    return {"certificates": certs, "waybills": waybills, "media": media, "checklists": checklists}


def history_lines(session: Session, item: CompiledItem, case: CaseRow,
                  events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The case's history as people read it: each event's title in words (states, materials,
    counters and clerks by their names), who, where, and the comment."""
    states = {name: ref.state.label for name, ref in item.table.items()}
    materials = {m.id: m.name for m in item.definition.materials}
    counters = directory.counter_names(session, [*case["parties"].values(),
                                                 *(e["counter_id"] for e in events if e["counter_id"])])
    clerks = directory.clerk_names(session, [(e.get("data") or {}).get("to_clerk") for e in events])
    stored = [(e.get("data") or {}).get("evidence_id") for e in events if e["kind"] == "evidence_stored"]
    notices = {i: (m or {}).get("document") and documents.title_for(item.definition, str((m or {}).get("kind")))
               for i, m in session.execute(sa.select(T_EVID.c.id, T_EVID.c.meta)
                                           .where(T_EVID.c.id.in_([i for i in stored if i])))} if stored else {}
    out = []
    for e in events:
        data = e.get("data") or {}
        kind = e["kind"]
        title = labels.event_label(kind)
        if kind == "transition":
            title = f"{states.get(e['from_state'] or '', '上一环节')} → {states.get(e['to_state'] or '', '下一环节')}"
        elif kind == "intake":
            title = f"收件 ({data.get('mode') or case['mode']})"
            if data.get("prereview"):
                title += f", 来自预审 {data['prereview']}"
        elif kind == "material":
            status = labels.MATERIAL_STATUS.get(str(data.get("status")), "已更新")
            title = f"材料「{materials.get(str(data.get('material')), '其他材料')}」: {status}"
        elif kind in ("page_added", "page_withdrawn") and data.get("material") in materials:
            title += f"「{materials[data['material']]}」"
        elif kind == "assign":
            title = f"转交 → {clerks.get(data.get('to_clerk') or 0, '同事')}"
        elif kind == "extension":
            title = f"延期 {data.get('days', '')} 个工作日 (法定办结日 {data.get('legal_due', '')})"
        elif kind == "handoff":
            where = counters.get(e["counter_id"] or "", "")
            title = f"跨域移交: {where}已接件" if where else title
        elif kind == "evidence_stored":
            title = "存证: " + (notices.get(data.get("evidence_id") or 0)
                               or labels.EVIDENCE_KINDS.get(str(data.get("kind")), "文件"))
        out.append({"seq": e["seq"], "kind": kind, "at": e["at"], "title": title, "who": e["actor_name"],
                    "counter": counters.get(e["counter_id"], "其他窗口") if e["counter_id"] else "",
                    "comment": e.get("comment")})
    return out


def intake_regions(session: Session, item: CompiledItem) -> list[tuple[str, str]]:
    """The regions a case of ``item`` can be handled in: where a counter
    decides the item (this counter's own region when it decides it itself) and every department
    the item involves has a counter (engine.directory.resolve_parties routes the same way)."""
    code = item.definition.code
    rows = session.execute(sa.select(Counter.region_code, CounterItem.role)
                           .join(CounterItem, CounterItem.counter_id == Counter.id)
                           .where(CounterItem.item_code == code)).all()
    roles_at: dict[str, set[str]] = {}
    for region, role in rows:
        roles_at.setdefault(region, set()).add(role)
    wanted = set(item.definition.roles)
    codes = [r for r, roles in roles_at.items() if ("competent" in roles) and wanted <= roles]
    return directory.regions(session, codes)
