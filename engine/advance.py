"""Advance a case: the one path by which any state changes, for clerks, flows and video alike.

Everything a transition writes — new state, bumped version, history, outbox jobs, queue
membership — is written in the caller's single transaction, guarded by the row version read
at the start, so two clerks racing on one case cannot both win.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from engine import catalog, certfields, deadlines, directory, documents, metrics, workdays
from engine.actors import SYSTEM, Actor
from engine.errors import Forbidden, GuardFailed, NotFound, StaleVersion, TriggerNotOpen
from engine.guards import Guards, remember_came_from, remember_materials
from engine.history import chain
from engine.materials import defer_material
from engine.statements import (
    BUMP_CASE,
    DELETE_HOLDER,
    INSERT_HISTORY,
    INSERT_HOLDER,
    INSERT_OUTBOX,
    SELECT_CASE,
    SELECT_CASE_LOCKED,
    SELECT_HOLDERS,
    SELECT_NUMBER,
    UPDATE_CASE,
)
from states.compiler import CompiledItem
from states.defaults import BACK_PREFIX
from states.schema import Transition
from states.vocabulary import ACTOR_ROLES, OUTCOMES
from storage.db import database_key
from storage.prepared import pipelined
from storage.rows import CaseRow, MaterialRowUpdate, NewHistoryEvent, NewOutboxJob
from storage.tables import (
    T_MAT,
    Counter,
)

MAX_AUTO_STEPS = 16


def load_case(session: Session, number: str, *, lock: bool = False) -> CaseRow:
    """The case row; ``lock`` holds it against other writers until the unit ends."""
    row = (SELECT_CASE_LOCKED if lock else SELECT_CASE).first(session, {"number": number})
    if row is None:
        raise NotFound(f"办件 {number} 不存在")
    return row


def case_number(session: Session, case_id: int) -> str:
    row = SELECT_NUMBER.first(session, {"case_id": case_id})
    if row is None:
        raise NotFound(f"办件 #{case_id} 不存在")
    return str(row["number"])


def holder_counters(item: CompiledItem, case: CaseRow) -> list[str]:
    """Counters holding the case now: the state's holder, plus each unfinished branch's."""
    ref = item.table[case["state"]]
    if ref.state.final:
        return []
    parties = case["parties"]
    out = [parties[ref.state.holder]]
    for b in ref.state.parallel or []:
        if not item.table[f"{ref.name}.{b.id}.{case['branches'][b.id]}"].state.final:
            out.append(parties[b.holder])
    return list(dict.fromkeys(out))


def source_holder(item: CompiledItem, case: CaseRow, source: str) -> str:
    ref = item.table[source]
    if ref.branch is None:
        return case["parties"][ref.state.holder]
    branch = next(b for b in item.table[ref.parallel].state.parallel or [] if b.id == ref.branch)
    return case["parties"][branch.holder]


def status_code(item: CompiledItem, case: CaseRow, deferred_pending: bool, before: int | None = None) -> int:
    """The exchange status (办件状态代码 1–15) of the case's state; ``before`` is the status it
    leaves, so that the step after 补正 is 7 补正结束 and the step after 特别程序 is 10 特别程序结束."""
    s = item.table[case["state"]].state
    if s.status:
        return s.status
    if s.final:
        code = OUTCOMES[s.outcome or "approved"]
        return 12 if code == 11 and deferred_pending else code
    code = 1 if case["state"] == item.initial else 9 if s.clock == "pause" else 3
    if before == 6 and code in (1, 3):
        return 7
    if before == 9 and code == 3:
        return 10
    return code


def find_route(item: CompiledItem, case: CaseRow, trigger: str) -> tuple[str, Transition] | None:
    for name in item.active_names(case["state"], case["branches"]):
        t = item.routes.get((trigger, name))
        if t is not None:
            return name, t
    return None


def companion_step(item: CompiledItem, source: str) -> bool:
    """Whether a step belongs to the applicant's companion clerk (陪伴): the intake counter's
    steps — 收件, 补正, 送达 there, 撤回 — rather than a role's at the holding counter."""
    ref = item.table[source]
    if ref.branch is None:
        return ref.state.holder == "intake"
    branch = next(b for b in item.table[ref.parallel].state.parallel or [] if b.id == ref.branch)  # type: ignore[index]
    return branch.holder == "intake"


def why_forbidden(item: CompiledItem, case: CaseRow, source: str, t: Transition,
                  actor: Actor) -> list[str]:
    """What the actor lacks to fire ``t`` from ``source``: roles, the holding counter, and who the
    step belongs to — the companion for the intake counter's steps, else whoever claimed it."""
    if actor.is_system:
        return [] if "system" in t.roles or t.auto else ["role:system"]
    withdraws = item.table[t.dest].state.outcome == "withdrawn"
    if "applicant" in actor.roles:  # on the progress page, proven by the case's query code
        return [] if withdraws and "applicant" in t.roles else ["role:" + "|".join(t.roles)]
    missing = []
    if not actor.roles & set(t.roles):
        missing.append("role:" + "|".join(t.roles))
    # 撤回 is the applicant's: their companion records it at the intake counter, wherever the
    # case is being handled.
    holder = case["intake_counter_id"] if withdraws else source_holder(item, case, source)
    if actor.counter_id != holder:
        missing.append(f"intake:{holder}" if withdraws else f"counter:{holder}")
    elif withdraws or companion_step(item, source):
        companion = case.get("companion_id")
        if companion is not None and companion != actor.id:
            missing.append(f"companion:{companion}")
    else:
        claimant = case["assignees"].get(holder)
        if claimant is not None and claimant != actor.id:
            missing.append(f"claim:{claimant}")
    return missing


def describe_missing(missing: list[str], counters: Mapping[str, str], clerks: Mapping[int, str]) -> str:
    """The refusal in words, with names (``names_for`` looks them up)."""
    words = []
    for m in missing:
        kind, _, value = m.partition(":")
        if kind == "role":
            words.append("需要角色 " + " 或 ".join(ACTOR_ROLES.get(r, r) for r in value.split("|")))
        elif kind == "counter":
            words.append(f"办件当前由{counters.get(value, '其他窗口')}办理")
        elif kind == "intake":
            words.append(f"撤回由收件窗口{counters.get(value, '')}的陪伴人员办理")
        elif kind == "companion":
            who = clerks.get(int(value), "收件人员")
            words.append(f"一事一人: 该环节由陪伴申请人的{who}办理, 须由其或督查人员转交")
        elif kind == "claim":
            words.append(f"该环节已由{clerks.get(int(value), '其他工作人员')}认领, 须由其释放或转交")
    return "; ".join(words)


def names_for(session: Session, missing: list[str]) -> tuple[dict[str, str], dict[int, str]]:
    counters = [v for k, _, v in (m.partition(":") for m in missing) if k in ("counter", "intake")]
    clerks = [int(v) for k, _, v in (m.partition(":") for m in missing) if k in ("companion", "claim")]
    return directory.counter_names(session, counters), directory.clerk_names(session, clerks)


def open_triggers(item: CompiledItem, case: CaseRow) -> list[str]:
    names = item.active_names(case["state"], case["branches"])
    return sorted({t for (t, src) in item.routes if src in names})


@dataclass
class Pending:
    """What one advance call will write, accumulated over the trigger and any auto steps."""

    history: list[NewHistoryEvent] = field(default_factory=list)
    jobs: list[NewOutboxJob] = field(default_factory=list)
    material_updates: list[MaterialRowUpdate] = field(default_factory=list)
    holders_before: list[str] | None = None  # queue membership when the call started
    status_before: int | None = None  # the exchange status when the call started


def advance(
    session: Session,
    number: str,
    trigger: str,
    actor: Actor,
    payload: dict[str, Any] | None = None,
    expected_version: int | None = None,
) -> CaseRow:
    """Fire ``trigger`` on case ``number``; return the updated case row (as a dict)."""
    payload = payload or {}
    case = load_case(session, number, lock=True)
    if expected_version is not None and case["version"] != expected_version:
        raise StaleVersion(
            f"办件版本为 {case['version']}, 请求基于版本 {expected_version}",
            current_version=case["version"],
        )
    item = catalog.compiled(session, case["item_version_id"])
    at = now()
    original_version = case["version"]
    before_state, before_branches = case["state"], case["branches"]
    pending = Pending(holders_before=holder_counters(item, case), status_before=case["status_code"])
    guards = Guards(session, item, case, payload)
    _apply_deferrals(session, item, case, payload, guards, actor, at, pending)
    _fire(session, item, case, trigger, actor, payload, guards, at, pending)
    for _ in range(MAX_AUTO_STEPS):
        auto = _next_auto(item, case, guards)
        if auto is None:
            break
        guards.payload = {}
        _fire(session, item, case, auto, SYSTEM, {}, guards, at, pending)
    _write(session, item, case, original_version, guards, pending, at)
    deadlines.on_advance(session, item, case, before_state, before_branches, at)  # 受理, decision, clock
    # The notices these steps call for (受理通知书, 补正材料通知书, …), numbered in this transaction.
    enqueue_documents(session, case, documents.issue_at(session, item, case, pending.history, actor), at)  # type: ignore[arg-type]
    if documents.leaves_intake(item, pending.history):  # type: ignore[arg-type]
        enqueue_documents(session, case, documents.waiting(session, case["id"]), at, drawing=True)  # 收件凭证
    remember_materials(session, guards)
    last = pending.history[-1] if pending.history else None
    if last is not None and last.get("to_state") == case["state"] and last.get("from_state") != case["state"] \
            and not str(last.get("trigger")).startswith(BACK_PREFIX):
        remember_came_from(session, case, last.get("from_state"))
    return case


def _apply_deferrals(session: Session, item: CompiledItem, case: CaseRow, payload: dict[str, Any],
                     guards: Guards, actor: Actor, at: datetime, pending: Pending) -> None:
    """容缺受理: deferrable materials named in ``payload.defer`` are recorded with promise and due date."""
    entries = payload.get("defer") or []
    cal = workdays.calendar(session) if entries else None
    for i, entry in enumerate(entries):
        update = defer_material(item, entry, f"defer[{i}]", at, cal)  # type: ignore[arg-type]
        guards.materials[update["material_id"]] = {**update, "case_id": case["id"]}
        pending.material_updates.append(update)


def _next_auto(item: CompiledItem, case: CaseRow, guards: Guards) -> str | None:
    for name in item.active_names(case["state"], case["branches"]):
        for t in item.autos.get(name, []):
            if all(guards(g, t.dest) for g in item.guards_of(t)):
                return t.trigger
    return None


def _fire(session: Session, item: CompiledItem, case: CaseRow, trigger: str, actor: Actor,
          payload: dict[str, Any], guards: Guards, at: datetime, pending: Pending) -> None:
    route = find_route(item, case, trigger)
    if route is None:
        raise TriggerNotOpen(
            f"办件处于「{item.table[case['state']].state.label}」, 不能执行 '{trigger}'",
            open_triggers=open_triggers(item, case),
        )
    source, t = route
    missing = why_forbidden(item, case, source, t, actor)
    if missing:
        raise Forbidden(describe_missing(missing, *names_for(session, missing)), missing=missing)
    closed = [{"guard": g, "reason": r} for g in item.guards_of(t) if (r := guards.why_closed(g, t.dest))]
    if closed:
        raise GuardFailed("；".join(x["reason"] for x in closed), guards=closed)
    before_state, before_holders = case["state"], holder_counters(item, case)
    model = SimpleNamespace(state=item.model_state(case["state"], case["branches"]))
    # A decision that issues a certificate carries the data the approver enters for it, checked
    # before anything is written.
    cert = certfields.approval_values(item.definition, trigger, case["applicant"], payload.get("data"))
    if not item.fire(model, trigger, guards):  # the machine re-checks the same guards: the law
        raise GuardFailed("前置条件未满足")
    case["state"], case["branches"] = item.parse_model_state(model.state)
    case["version"] += 1
    case["updated_at"] = at
    holder = source_holder(item, case, source)
    if holder in case["assignees"]:  # the claimed step is done; the next one is unclaimed
        case["assignees"] = {k: v for k, v in case["assignees"].items() if k != holder}
    dest = item.table[case["state"]].state
    if dest.final:
        case["finished_at"] = at
    data = payload.get("data")
    if cert is not None:
        data = {**(data or {}), "certificate": cert}
    if "commitment_signed" in item.guards_of(t) and not case["commitment"] and payload.get("commitment"):
        # 告知承诺 given at this step: kept on the case (who, when, what) and in its history.
        case["commitment"] = {**payload["commitment"], "signed_at": at.isoformat(), "recorded_by": actor.name}
        data = {**(data or {}), "commitment": case["commitment"]}
    pending.history.append({
        "case_id": case["id"], "seq": case["version"], "at": at, "kind": "transition",
        "actor_id": actor.id, "actor_name": actor.name, "counter_id": actor.counter_id,
        "trigger": trigger, "from_state": _qualified(before_state, source), "to_state": t.dest,
        "comment": payload.get("comment"), "data": data,
    })
    after_holders = holder_counters(item, case)
    jobs = list(dict.fromkeys([*t.jobs, *([dest.job] if dest.job else [])]))
    main_from = before_holders[0] if before_holders else None
    main_to = after_holders[0] if after_holders else None
    counter = main_to or main_from or case["competent_counter_id"]
    regions: dict[str, str] = {}
    if main_from and main_to and main_from != main_to:
        regions = regions_of(session, {main_from, main_to})
        if regions[main_from] != regions[main_to]:
            jobs.insert(0, "handoff")  # crossing regions is a step of its own (跨域移交)
    if jobs and counter not in regions:
        regions.update(regions_of(session, {counter}))
    for job in jobs:
        pending.jobs.append(new_job(case, job, regions[counter], counter, at, {
            "number": case["number"], "trigger": trigger, "from": before_state, "to": case["state"],
            "from_counter": main_from, "to_counter": main_to}))


def new_job(case: CaseRow, job: str, region: str, counter: str, at: datetime,
            payload: dict[str, Any]) -> NewOutboxJob:
    """An outbox row for ``job``, run on ``region``'s pool."""
    return {"id": str(uuid.uuid4()), "case_id": case["id"], "job": job, "region_code": region,
            "counter_id": counter, "status": "pending", "attempts": 0, "created_at": at, "payload": payload}


def enqueue_documents(session: Session, case: CaseRow, issued: list[documents.Issued], at: datetime,
                      *, drawing: bool = False) -> None:
    """Queue the drawing of notices just issued, each on its issuing counter's region's pool; those
    drawn later (``documents.LEAVING_INTAKE``) only when ``drawing`` says their time has come."""
    issued = [d for d in issued if drawing or d.drawn == documents.ON_ISSUE]
    if not issued:
        return
    regions = regions_of(session, {d.counter_id for d in issued})
    INSERT_OUTBOX.execute_many(session, [
        new_job(case, "render_document", regions[d.counter_id], d.counter_id, at,
                {"number": case["number"], "document_id": d.id, "kind": d.kind, "document": d.number})
        for d in issued])


def _qualified(state: str, source: str) -> str:
    return source if source.startswith(state) else state


_region_of: dict[tuple[str, str], str] = {}


def regions_of(session: Session, counters: set[str]) -> dict[str, str]:
    """Counter → region, cached per database: a counter does not move between regions."""
    url = database_key(session)
    missing = {c for c in counters if (url, c) not in _region_of}
    if missing:
        rows = session.execute(
            sa.select(Counter.id, Counter.region_code).where(Counter.id.in_(missing))).all()
        _region_of.update({(url, cid): region for cid, region in rows})
    return {c: _region_of[(url, c)] for c in counters if (url, c) in _region_of}


def _write(session: Session, item: CompiledItem, case: CaseRow, original_version: int,
           guards: Guards, pending: Pending, at: datetime) -> None:
    for u in pending.material_updates:
        session.execute(
            sa.update(T_MAT).where(T_MAT.c.case_id == case["id"],
                                   T_MAT.c.material_id == u["material_id"]).values(**u)
        )
    # 办结 with a 容缺 material still outstanding is 12, not 11: at a final state read the
    # materials even when no guard did.
    look = guards._materials is not None or item.table[case["state"]].state.final
    deferred = look and any(m.get("status") == "deferred" for m in guards.materials.values())
    case["status_code"] = status_code(item, case, deferred, pending.status_before)
    chain(case, pending.history)
    after = holder_counters(item, case)
    with pipelined(session):
        update = UPDATE_CASE.send(session, {
            "case_id": case["id"], "expected": original_version, "state": case["state"],
            "branches": case["branches"], "version": case["version"], "status_code": case["status_code"],
            "assignees": case["assignees"], "updated_at": at, "finished_at": case["finished_at"],
            "last_hash": case["last_hash"], "commitment": case["commitment"]})
        INSERT_HISTORY.execute_many(session, pending.history)
        INSERT_OUTBOX.execute_many(session, pending.jobs)
        if after != pending.holders_before:
            sync_holders(session, case["id"], after, pending.holders_before)
    if update.rowcount != 1:  # cannot happen under the row lock; the unit rolls the rest back
        raise StaleVersion("办件已被他人同时更新, 请刷新后重试")
    for h in pending.history:
        metrics.count_transition(session, case["item_code"], str(h["trigger"]))


def sync_holders(session: Session, case_id: int, holders: list[str], before: list[str] | None = None) -> None:
    """Make the queue rows match ``holders``; ``before`` (when the caller knows it) saves a read."""
    current = set(before) if before is not None else {
        r["counter_id"] for r in SELECT_HOLDERS.all(session, {"case_id": case_id})}
    wanted = set(holders)
    DELETE_HOLDER.execute_many(session, [{"case_id": case_id, "counter_id": h} for h in sorted(current - wanted)])
    INSERT_HOLDER.execute_many(session, [{"case_id": case_id, "counter_id": h} for h in sorted(wanted - current)])


def append_event(session: Session, case: CaseRow, expected_version: int | None,
                 at: datetime, kind: str, actor: Actor, data: dict[str, Any],
                 comment: str | None = None) -> None:
    """Record a non-transition event (material, assignment, …): bump the version, append history."""
    if expected_version is not None and expected_version != case["version"]:
        raise StaleVersion(f"办件版本为 {case['version']}, 请求基于版本 {expected_version}",
                           current_version=case["version"])
    event: NewHistoryEvent = {
        "case_id": case["id"], "seq": case["version"] + 1, "at": at, "kind": kind,
        "actor_id": actor.id, "actor_name": actor.name, "counter_id": actor.counter_id,
        "comment": comment, "data": data}
    chain(case, [event])
    changed = BUMP_CASE.execute(session, {
        "case_id": case["id"], "expected": case["version"], "version": case["version"] + 1,
        "updated_at": at, "assignees": case["assignees"], "last_hash": case["last_hash"]})
    if changed != 1:
        raise StaleVersion("办件已被他人同时更新, 请刷新后重试")
    case["version"] += 1
    INSERT_HISTORY.execute(session, event)


def require_holder(session: Session, case: CaseRow, actor: Actor) -> CompiledItem:
    item = catalog.compiled(session, case["item_version_id"])
    if actor.counter_id not in holder_counters(item, case):
        raise Forbidden("只有当前办理窗口可以操作此办件", missing=["counter"])
    return item


def fire_first_open(session: Session, number: str, triggers: tuple[str, ...], actor: Actor,
                    payload: dict[str, Any] | None = None) -> str | None:
    """Fire the first of ``triggers`` the actor may fire now; None when none is open."""
    case = load_case(session, number)
    item = catalog.compiled(session, case["item_version_id"])
    for trigger in triggers:
        route = find_route(item, case, trigger)
        if route is None or why_forbidden(item, case, route[0], route[1], actor):
            continue
        try:
            advance(session, number, trigger, actor, dict(payload or {}))
        except GuardFailed:
            continue
        return trigger
    return None
