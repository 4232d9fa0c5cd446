"""Who may read a case: the one rule every route and page asks (clerks of a counter that holds
or held it, supervisors of its regions, the system)."""

from __future__ import annotations

from sqlmodel import Session

from engine.actors import Actor
from engine.dashboard import supervisor_may_see
from engine.errors import Forbidden
from storage.rows import CaseRow


def require_case_reader(session: Session, actor: Actor, case: CaseRow) -> None:
    if actor.is_system or (actor.counter_id is not None and actor.counter_id in case["parties"].values()):
        return
    if "supervisor" in actor.roles:
        if supervisor_may_see(session, actor, case):
            return
        raise Forbidden("该案件不在您督查的区域内", missing=["region"])
    raise Forbidden("本窗口未参与该案件", missing=["counter"])
