"""网络自动审批: evaluate an item's rules over a case's data and materials, in order.

The first failing rule decides "to a person"; when every rule passes, the last rule decides
"approve". Either way the deciding rule is named, so history says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from states.schema import ItemDefinition, ReviewRule
from storage.rows import CaseRow


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
        ok = isinstance(actual, str) and re.fullmatch(str(v), actual) is not None
    else:
        a, b = _number(actual), _number(v)
        ok = a is not None and b is not None and (a <= b if rule.op == "lte" else a >= b)
    return None if ok else f"{rule.field} = {actual!r} 不满足 {rule.op} {v!r}"


def evaluate(d: ItemDefinition, case: CaseRow, materials: dict[str, str]) -> Decision:
    assert d.auto_review is not None
    rules = d.auto_review.rules
    for rule in rules:
        why = check(rule, case, materials)
        if why is not None:
            return Decision(False, rule.id, rule.label, why)
    last = rules[-1]
    return Decision(True, last.id, last.label, f"全部 {len(rules)} 条规则通过")
