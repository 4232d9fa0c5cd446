"""Built-in guards. Each answers why it is closed (zh-CN), or None when it is open."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine import situations
from engine.extensions import GUARDS
from engine.situations import conditional
from engine.statements import SELECT_MATERIALS
from states.compiler import CompiledItem
from states.defaults import BACK_PREFIX
from storage.rows import CaseRow, MaterialRow
from storage.tables import T_HIST


def load_materials(session: Session, case_id: int) -> dict[str, MaterialRow]:
    return {r["material_id"]: r for r in SELECT_MATERIALS.all(session, {"case_id": case_id})}


_SEEN = "guards.materials"  # session.info key: (case row, its materials) as the last advance left them


def remember_materials(session: Session, guards: Guards) -> None:
    """Hand the materials an advance read (and wrote) to the answer built from the same case row,
    in the same unit: one query less per request. Keyed by the row object itself, so any other
    read of the case (another dict) loads its own."""
    if guards._materials is not None:
        session.info[_SEEN] = (guards.case, guards._materials)


_CAME = "guards.came_from"  # session.info key: (case row, its state, the state it was entered from)


def remember_came_from(session: Session, case: CaseRow, from_state: str | None) -> None:
    """The answer built after an advance knows where the case came from without asking history."""
    session.info[_CAME] = (case, case["state"], from_state)


class Guards:
    """Evaluates guards against one case, its materials (loaded once, lazily) and the payload."""

    def __init__(self, session: Session, compiled: CompiledItem, case: CaseRow,
                 payload: dict[str, Any]) -> None:
        self.session, self.compiled, self.case, self.payload = session, compiled, case, payload
        self._materials: dict[str, MaterialRow] | None = None
        self.dest: str | None = None  # the destination of the transition being checked
        self._came_from: tuple[str, str | None] | None = None  # (state, the state it was entered from)
        self._situation: dict[str, str] | None = None

    @property
    def materials(self) -> dict[str, MaterialRow]:
        if self._materials is None:
            seen = self.session.info.get(_SEEN)
            if seen is not None and seen[0] is self.case:
                self._materials = seen[1]
            else:
                self._materials = load_materials(self.session, self.case["id"])
        return self._materials

    def __call__(self, name: str, dest: str | None = None) -> bool:
        return self.why_closed(name, dest) is None

    def why_closed(self, name: str, dest: str | None = None) -> str | None:
        self.dest = dest
        return GUARDS[name].impl(self)

    @property
    def situation(self) -> dict[str, str]:
        """The case's 情形 answers, read once."""
        if self._situation is None:
            self._situation = situations.case_answers(self.session, self.case["id"])
        return self._situation

    @property
    def came_from(self) -> str | None:
        """The state the case last entered its current state from going forward (a 退回 into it, or
        a step back to itself, does not count), read once."""
        state = self.case["state"]
        seen = self.session.info.get(_CAME)
        if seen is not None and seen[0] is self.case and seen[1] == state:
            self._came_from = (state, seen[2])
        if self._came_from is None or self._came_from[0] != state:
            row = self.session.execute(
                sa.select(T_HIST.c.from_state).where(T_HIST.c.case_id == self.case["id"],
                                                     T_HIST.c.kind == "transition", T_HIST.c.to_state == state,
                                                     T_HIST.c.from_state != state,
                                                     ~T_HIST.c.trigger.startswith(BACK_PREFIX))
                .order_by(T_HIST.c.seq.desc()).limit(1)).first()
            self._came_from = (state, row[0] if row else None)
        return self._came_from[1]


@GUARDS.register("required_materials", "必要材料齐全(容缺材料已承诺)")
def _required_materials(g: Guards) -> str | None:
    missing = []
    optional = conditional(g.compiled.definition)  # 事项情形: only the answers' materials have rows
    for m in g.compiled.definition.materials:
        if m.id in optional and m.id not in g.materials:
            continue
        status = g.materials.get(m.id, {}).get("status", "missing")
        if m.required and not (status == "received" or (status == "deferred" and m.deferrable)):
            missing.append(m.name)
    return f"缺少必要材料: {'、'.join(missing)}" if missing else None


@GUARDS.register("commitment_signed", "已签署告知承诺书")
def _commitment_signed(g: Guards) -> str | None:
    if g.case.get("commitment") or g.payload.get("commitment"):
        return None
    return "申请人尚未签署告知承诺书"


@GUARDS.register("all_branches_done", "并联审批各部门均已完成")
def _all_branches_done(g: Guards) -> str | None:
    branches = g.case.get("branches") or {}
    pending = [b for b, done in g.compiled.branch_done(g.case["state"], branches).items() if not done]
    return f"并联审批尚未完成: {'、'.join(pending)}" if pending else None


@GUARDS.register("situation_path", "所选情形走此环节")
def _situation_path(g: Guards) -> str | None:
    active = g.compiled.active_names(g.case["state"], g.case.get("branches"))  # a step inside a branch too
    return situations.path_closed(g.compiled.definition, g.situation, active, g.dest)


@GUARDS.register("comment_given", "已填写意见")
def _comment_given(g: Guards) -> str | None:
    return None if (g.payload.get("comment") or "").strip() else "须填写意见(理由)"



@GUARDS.register("previous_step", "退回至办件来自的上一环节")
def _previous_step(g: Guards) -> str | None:
    came = g.came_from
    if came is not None and came == g.dest:
        return None
    table = g.compiled.table
    where = f"「{table[came].state.label}」" if came in table else "其他环节"
    return f"办件是从{where}转来的, 只能退回该环节"
