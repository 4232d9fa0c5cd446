"""网络自动审批: evaluate an item's rules over a case's data and materials, in order.

The first failing rule decides "to a person"; when every rule passes, the last rule decides
"approve". Either way the deciding rule is named, so history says why.

``matches`` rules use a linear-time engine (``states.patterns``, RE2). An evaluation runs in a
worker process with ``rule_budget_seconds`` (``decide_bounded``): past it, or when it cannot run
at all (a pattern RE2 refuses in a version stored before that check, every worker busy), the
decision is "to a person", saying why. No rule can keep a case from a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import get_settings
from engine import offload
from states.patterns import PatternError, fullmatch
from states.schema import AutoReview, ItemDefinition, ReviewRule
from storage.rows import CaseRow

TO_A_PERSON = "转人工审核"


@dataclass(frozen=True)
class Decision:
    approved: bool
    rule: str
    label: str
    reason: str


def _lookup(case: CaseRow, path: str) -> Any:
    value: Any = case
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _number(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def check(rule: ReviewRule, case: CaseRow, materials: dict[str, str]) -> str | None:
    """Why the rule fails (zh-CN), or None when it passes."""
    if rule.materials is not None:
        missing = [m for m in rule.materials if materials.get(m) != "received"]
        return f"材料未齐全: {', '.join(missing)}" if missing else None
    assert rule.field is not None
    actual = _lookup(case, rule.field)
    v = rule.value
    ok: bool
    if rule.op == "present":
        ok = actual not in (None, "", [], {})
    elif rule.op == "eq":
        ok = actual == v
    elif rule.op == "ne":
        ok = actual != v
    elif rule.op == "in":
        ok = actual in (v if isinstance(v, list) else [v])
    elif rule.op == "matches":
        ok = isinstance(actual, str) and fullmatch(str(v), actual)
    else:
        a, b = _number(actual), _number(v)
        ok = a is not None and b is not None and (a <= b if rule.op == "lte" else a >= b)
    return None if ok else f"{rule.field} = {actual!r} 不满足 {rule.op} {v!r}"


def evaluate(d: ItemDefinition, case: CaseRow, materials: dict[str, str]) -> Decision:
    assert d.auto_review is not None
    return _evaluate(d.auto_review.rules, case, materials)


def _evaluate(rules: list[ReviewRule], case: CaseRow, materials: dict[str, str]) -> Decision:
    for rule in rules:
        why = check(rule, case, materials)
        if why is not None:
            return Decision(False, rule.id, rule.label, why)
    last = rules[-1]
    return Decision(True, last.id, last.label, f"全部 {len(rules)} 条规则通过")


def decide(ar: AutoReview, case: CaseRow, materials: dict[str, str]) -> tuple[Decision, str]:
    """The decision and its verdict (zh-CN): ``when`` first (not applicable: a person decides),
    then the rules. A rule that cannot be evaluated decides "to a person"."""
    try:
        unmet = next((w for w in ar.when or [] if check(w, case, materials) is not None), None)
        if unmet is not None:
            return (Decision(False, unmet.id, unmet.label, f"不适用网络自动审批: 条件「{unmet.label}」不满足"),
                    TO_A_PERSON)
        dec = _evaluate(ar.rules, case, materials)
    except PatternError as exc:
        return Decision(False, "pattern", "规则无法评估", f"{exc}"), f"无法自动评估, {TO_A_PERSON}"
    return dec, "全部通过, 自动批准" if dec.approved else f"未通过, {TO_A_PERSON}"


def decide_bounded(ar: AutoReview, case: CaseRow, materials: dict[str, str]) -> tuple[Decision, str]:
    """``decide`` in a worker process within ``rule_budget_seconds``; whatever stops it sends the
    case to a person, with the reason."""
    budget = get_settings().rule_budget_seconds
    try:
        return offload.COMPUTE.run(decide, ar, dict(case), dict(materials), timeout=budget)
    except offload.Overrun:
        return (Decision(False, "time_budget", "评估时限", f"规则评估超过时限 {budget:g} 秒, 已中止"),
                f"无法自动评估, {TO_A_PERSON}")
    except offload.OffloadError as exc:
        return Decision(False, "unavailable", "评估未能进行", exc.reason), f"无法自动评估, {TO_A_PERSON}"
