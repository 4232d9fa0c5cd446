"""Who works on a case (一事一人), so that no case is ever stranded by assignment.

- The **companion** (陪伴人员) is the clerk who took the case in: the intake counter's steps —
  收件, 补正, 送达 there, 撤回 — are theirs, and every page names them.
- Every other step belongs to whoever holds one of its roles at the holding counter. A clerk may
  **claim** the current step (认领) so colleagues see who is on it; firing the step completes the
  claim, and the next step starts unclaimed. A claimant may **release** a claim.
- A supervisor — or the companion, or the claimant — **hands over** to a named colleague.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from engine import catalog, directory
from engine.actors import Actor
from engine.advance import append_event, companion_step, holder_counters, load_case, source_holder
from engine.errors import Conflict, Forbidden, InvalidInput
from states.compiler import CompiledItem
from storage.rows import CaseRow
from storage.tables import T_CASE, Clerk

Kind = Literal["companion", "step"]


def current_step(item: CompiledItem, case: CaseRow, counter_id: str) -> str | None:
    """The state the case is in at ``counter_id`` (a branch state in parallel review), if any."""
    for name in reversed(item.active_names(case["state"], case["branches"])):
        ref = item.table[name]
        if not ref.state.final and not ref.state.parallel and source_holder(item, case, name) == counter_id:
            return name
    return None


def step_roles(item: CompiledItem, step: str) -> set[str]:
    """The roles that work on a step: those of its own transitions (撤回 is the companion's, at the
    intake counter, and makes nobody a worker on the step)."""
    return {r for (_, src), t in item.routes.items() if src == step
            and item.table[t.dest].state.outcome != "withdrawn" for r in t.roles} - {"system"}


def claim(session: Session, number: str, actor: Actor, expected_version: int | None = None) -> CaseRow:
    """认领: the actor takes the current step at their counter."""
    case = load_case(session, number, lock=True)
    item = catalog.compiled(session, case["item_version_id"])
    step = current_step(item, case, actor.counter_id) if actor.counter_id else None
    if step is None or actor.counter_id not in holder_counters(item, case):
        raise Forbidden("只有当前办理窗口的工作人员可以认领", missing=["counter"])
    if companion_step(item, step):
        raise Conflict("该环节由陪伴申请人的收件人员办理, 无需认领")
    if not actor.roles & step_roles(item, step):
        raise Forbidden(f"认领「{item.table[step].state.label}」须有该环节的办理角色", missing=["role"])
    current = case["assignees"].get(actor.counter_id)  # type: ignore[arg-type]
    if current == actor.id:
        return case
    if current is not None:
        who = directory.clerk_names(session, [current]).get(current, "其他工作人员")
        raise Conflict(f"该环节已由{who}认领, 须由其释放或转交", field="number")
    case["assignees"] = {**case["assignees"], actor.counter_id: actor.id}  # type: ignore[dict-item]
    append_event(session, case, expected_version, now(), "claim", actor,
                 {"counter": actor.counter_id, "step": step, "clerk": actor.id})
    return case


def release(session: Session, number: str, actor: Actor, expected_version: int | None = None) -> CaseRow:
    """The claimant gives the step back to the counter's queue (a supervisor hands it over instead)."""
    case = load_case(session, number, lock=True)
    counter = actor.counter_id
    if counter is None or case["assignees"].get(counter) != actor.id:
        raise Forbidden("只有认领人可以释放认领", missing=["claim"])
    case["assignees"] = {k: v for k, v in case["assignees"].items() if k != counter}
    append_event(session, case, expected_version, now(), "release", actor, {"counter": counter, "clerk": actor.id})
    return case


def hand_over(session: Session, number: str, actor: Actor, counter_id: str, clerk_id: int,
              expected_version: int | None = None, comment: str | None = None,
              kind: Kind | None = None) -> CaseRow:
    """Hand the companion's part, or the current step at ``counter_id``, to a named colleague."""
    case = load_case(session, number, lock=True)
    item = catalog.compiled(session, case["item_version_id"])
    step = current_step(item, case, counter_id)
    if kind is None:
        kind = "companion" if (step is None and counter_id == case["intake_counter_id"]) or (
            step is not None and companion_step(item, step)) else "step"
    clerk = session.get(Clerk, clerk_id)
    if clerk is None or not clerk.active or clerk.counter_id != counter_id:
        counter = directory.counter_names(session, [counter_id]).get(counter_id, "该窗口")
        raise InvalidInput("clerk_id", f"所选工作人员不在{counter}或已停用")
    supervisor = "supervisor" in actor.roles
    if kind == "companion":
        if counter_id != case["intake_counter_id"]:
            raise InvalidInput("counter_id", "陪伴人员须是收件窗口的工作人员")
        if "clerk" not in clerk.roles.split(","):
            raise InvalidInput("clerk_id", f"{clerk.name}没有收件角色, 不能陪伴申请人")
        current = case.get("companion_id")
        if not supervisor and actor.id != current:
            raise Forbidden("只有督查人员或陪伴人员本人可以转交陪伴", missing=["role:supervisor"])
        append_event(session, case, expected_version, now(), "assign", actor,
                     {"kind": "companion", "counter": counter_id, "from_clerk": current, "to_clerk": clerk_id},
                     comment)
        session.execute(sa.update(T_CASE).where(T_CASE.c.id == case["id"]).values(companion_id=clerk_id))
        case["companion_id"] = clerk_id
        return case
    if step is None:
        raise InvalidInput("counter_id", "办件当前不在该窗口办理, 没有可转交的环节")
    if companion_step(item, step):
        raise InvalidInput("kind", "该环节由陪伴申请人的收件人员办理: 请转交陪伴人员 (kind=companion)")
    if not set(clerk.roles.split(",")) & step_roles(item, step):
        raise InvalidInput("clerk_id", f"{clerk.name}没有「{item.table[step].state.label}」的办理角色")
    current = case["assignees"].get(counter_id)
    if not supervisor and actor.id != current:
        raise Forbidden("只有督查人员或当前认领人可以转交该环节", missing=["role:supervisor"])
    case["assignees"] = {**case["assignees"], counter_id: clerk_id}
    append_event(session, case, expected_version, now(), "assign", actor,
                 {"kind": "step", "counter": counter_id, "step": step, "from_clerk": current, "to_clerk": clerk_id},
                 comment)
    return case
