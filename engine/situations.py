"""事项情形: the answers that decide which of an item's materials an application needs.

A material some option lists is needed only when that option is chosen; every other material
always. The same holds for the path of the flow: a transition some option lists (``path``) is
open only on a case whose answers chose that option (the ``situation_path`` guard the compiler
adds to it). The answers are checked against the item's questions (each answered, with one of its
options) and are recorded in the case's intake event (its history), where the guard reads them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.errors import InvalidInput
from states.compiler import situation_paths
from states.schema import ItemDefinition, Material, Transition
from storage.tables import T_HIST

MAX_ANSWER = 64


def conditional(d: ItemDefinition) -> set[str]:
    """Materials that only some answer asks for."""
    return {mid for q in d.situations for o in q.options for mid in o.materials}


def check_answers(d: ItemDefinition, answers: Mapping[str, Any] | None, field: str = "situation") -> dict[str, str]:
    """The answers, each question answered with one of its options; otherwise InvalidInput naming
    the field. An item without questions takes none."""
    given = dict(answers or {})
    out: dict[str, str] = {}
    questions = {q.id: q for q in d.situations}
    for key in given:
        if key not in questions:
            raise InvalidInput(f"{field}.{key}", "事项没有此情形问题")
    for q in d.situations:
        value = given.get(q.id)
        if value is None:
            raise InvalidInput(f"{field}.{q.id}", f"须回答情形问题「{q.question}」")
        if not isinstance(value, str) or len(value) > MAX_ANSWER or value not in {o.id for o in q.options}:
            labels = "、".join(f"{o.id}({o.label})" for o in q.options)
            raise InvalidInput(f"{field}.{q.id}", f"「{q.question}」的回答须为: {labels}")
        out[q.id] = value
    return out


def selected_materials(d: ItemDefinition, answers: Mapping[str, str]) -> list[Material]:
    """The exact list for these answers (一次性告知), in the item's order."""
    chosen = {mid for q in d.situations for o in q.options if answers.get(q.id) == o.id for mid in o.materials}
    optional = conditional(d)
    return [m for m in d.materials if m.id not in optional or m.id in chosen]


def describe(d: ItemDefinition, answers: Mapping[str, str]) -> list[dict[str, str]]:
    """Question and answer labels, for pages and the case view."""
    out = []
    for q in d.situations:
        option = next((o for o in q.options if o.id == answers.get(q.id)), None)
        if option is not None:
            out.append({"id": q.id, "question": q.question, "answer": option.id, "label": option.label})
    return out


def case_answers(session: Session, case_id: int) -> dict[str, str]:
    """The answers a case was taken in with (its intake event)."""
    data = session.execute(sa.select(T_HIST.c.data).where(
        T_HIST.c.case_id == case_id, T_HIST.c.kind == "intake")).scalar_one_or_none()
    return dict((data or {}).get("situation") or {})


def path_closed(d: ItemDefinition, answers: Mapping[str, str], state: str | Collection[str],
                dest: str | None) -> str | None:
    """Why the answers do not take the step from ``state`` (or any of the qualified states a case
    in a parallel state is in) to ``dest`` (the checker keeps it the only one between the two), or
    None when they do."""
    gated = situation_paths(d)
    active = {state} if isinstance(state, str) else set(state)
    step: Transition | None = next((t for t in d.transitions if active & set(t.source) and t.dest == dest
                                    and t.trigger in gated), None)
    if step is None:
        return None
    chosen = gated[step.trigger]
    if any(answers.get(q) == o for q, o in chosen):
        return None
    labels = {(q.id, o.id): (q.question, o.label) for q in d.situations for o in q.options}
    wanted = "、".join(f"「{labels[c][1]}」" for c in chosen)
    return f"所选情形不走此环节 (仅适用于{wanted})"


def selected_path(d: ItemDefinition, answers: Mapping[str, str]) -> list[str]:
    """The labels of the steps these answers select, for the guide (its 办理流程)."""
    gated = situation_paths(d)
    return [t.label for t in d.transitions
            if t.trigger in gated and any(answers.get(q) == o for q, o in gated[t.trigger])]
