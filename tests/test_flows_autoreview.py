"""网络自动审批 rules: the schema and checker report problems at their line; rule evaluation."""

from __future__ import annotations

import pytest

from core.settings import ROOT
from engine.autoreview import evaluate
from engine.catalog import parse
from states.loader import DefinitionError

SRC = (ROOT / "catalog" / "items" / "ggcs_weisheng_xuke.yaml").read_text(encoding="utf-8")
LINES = SRC.splitlines()
COMPANY = {"applicant": {"name": "某公司", "kind": "company", "id_number": "91310115MA1K4ABC2X",
                         "address": "上海市浦东新区世纪大道 100 号"}, "mode": "全程网办"}
ALL = {m: "received" for m in ("application_form", "legal_rep_id", "floor_plans", "hygiene_report",
                               "hygiene_rules")}


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(DefinitionError) as err:
        parse(text, "ggcs.yaml")
    return [(p.line, p.message) for p in err.value.problems]


def test_unknown_trigger_is_reported_at_its_line() -> None:
    text = SRC.replace("approve: auto_approve", "approve: auto_aprove")
    assert (line_of(text, "approve: auto_aprove"), "自动审批引用了未定义的触发器 'auto_aprove'") in problems(text)


def test_trigger_the_system_may_not_fire_is_refused() -> None:
    text = SRC.replace("manual: manual_review", "manual: start_review")
    found = problems(text)
    assert any(line == line_of(text, "manual: start_review") and "须允许角色 system" in msg
               for line, msg in found), found


def test_unknown_material_and_malformed_rule_are_located() -> None:
    text = SRC.replace("hygiene_report, hygiene_rules]}", "hygiene_report, hygiene_rulez]}")
    found = problems(text)
    assert any("未知的材料 'hygiene_rulez'" in msg and line == line_of(text, "hygiene_rulez")
               for line, msg in found), found
    text = SRC.replace("field: applicant.kind, op: eq, value: company", "field: applicant.kind, value: company")
    found = problems(text)
    assert any("须声明 op" in msg and line == line_of(text, "applicant.kind") for line, msg in found), found


def test_rules_without_an_auto_review_job_are_pointless() -> None:
    text = SRC.replace(", job: auto_review}", "}")
    assert any("没有任何转换或状态启动 auto_review" in msg for _, msg in problems(text))


def test_evaluation_names_the_deciding_rule() -> None:
    d = parse(SRC, "ggcs.yaml").definition
    ok = evaluate(d, COMPANY, ALL)
    assert ok.approved and ok.rule == "address_given"
    deferred = evaluate(d, COMPANY, {**ALL, "hygiene_report": "deferred"})
    assert not deferred.approved and deferred.rule == "materials_complete" and "hygiene_report" in deferred.reason
    bad_code = {**COMPANY, "applicant": {**COMPANY["applicant"], "id_number": "12345"}}
    assert evaluate(d, bad_code, ALL).rule == "credit_code"
    no_address = {**COMPANY, "applicant": {**COMPANY["applicant"], "address": ""}}
    assert evaluate(d, no_address, ALL).rule == "address_given"


def test_an_automatic_decision_may_not_race_a_person() -> None:
    # The old demo item: the job decided from 已受理, which the reviewer leaves for 现场踏勘.
    raced = SRC.replace("from: auto_checking, to: approved", "from: accepted, to: approved").replace(
        "from: auto_checking, to: review", "from: accepted, to: review")
    found = problems(raced)
    line = line_of(raced, "approve: auto_approve")
    assert any(n == line and "'start_inspection'" in msg and "人工操作将总是落后" in msg for n, msg in found)
    # Saying when the automatic review applies lets the item keep it there.
    when = raced.replace("  manual: manual_review\n", "  manual: manual_review\n  when:\n"
                         "    - {id: reissue, label: 补办, field: applicant.kind, op: eq, value: company}\n")
    assert not [m for _, m in problems_or_none(when) if "人工操作将总是落后" in m]


def problems_or_none(text: str) -> list[tuple[int, str]]:
    try:
        parse(text, "ggcs.yaml")
    except DefinitionError as err:
        return [(p.line, p.message) for p in err.problems]
    return []
