"""事项情形: the answers that decide which of an item's materials an application needs.

A material some option lists is needed only when that option is chosen; every other material
always. The answers are checked against the item's questions (each answered, with one of its
options) and are recorded in the case's intake event (its history).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidInput
from states.schema import ItemDefinition, Material

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
