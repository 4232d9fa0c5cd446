"""Who may read a case: the one rule every route and page asks (clerks of a counter that holds
or held it, supervisors of its regions, the system)."""

from __future__ import annotations

from sqlmodel import Session

from engine.actors import Actor
from engine.dashboard import supervisor_may_see, visible_counters
from engine.errors import Forbidden
from storage.rows import CaseRow


def require_case_reader(session: Session, actor: Actor, case: CaseRow) -> None:
    if actor.is_system or (actor.counter_id is not None and actor.counter_id in case["parties"].values()):
        return
    if "supervisor" in actor.roles:
        if supervisor_may_see(session, actor, case):
            return
        raise Forbidden("该办件不在您督查的区域内", missing=["region"])
    raise Forbidden("本窗口未参与该办件", missing=["counter"])


def readable_counters(session: Session, actor: Actor) -> set[str] | None:
    """The same rule as a set for a query: a case is readable when one of these counters takes
    part in it (None: every case, for the system)."""
    if actor.is_system:
        return None
    out = {actor.counter_id} if actor.counter_id is not None else set()
    if "supervisor" in actor.roles:
        out |= set(visible_counters(session, actor))
    return out
