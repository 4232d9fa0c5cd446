"""事项情形 in the item language: every reference checked, each problem at its own line."""

from __future__ import annotations

import pytest

from core.settings import ROOT
from engine import situations
from engine.catalog import read_catalog
from engine.errors import InvalidInput
from states.loader import DefinitionError, parse_item

SOURCE = (ROOT / "catalog" / "items" / "gtgsh_sheli_dengji.yaml").read_text(encoding="utf-8")


def _problems(text: str) -> list[tuple[int, int, str]]:
    from engine import extensions

    with pytest.raises(DefinitionError) as err:
        parse_item(text, "item.yaml", vocabulary=extensions.vocabulary())
    assert all(p.file == "item.yaml" for p in err.value.problems)
    return [(p.line, p.col, p.message) for p in err.value.problems]


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_unknown_material_in_an_answer_is_reported_at_its_line() -> None:
    bad = SOURCE.replace("materials: [family_members]", "materials: [family_member]")
    (line, _col, message), = _problems(bad)
    assert line == _line(bad, "family_member]")
    assert message == "情形 'organisation' 的选项 'family' 引用了未知的材料 'family_member'"


def test_duplicate_questions_and_answers_are_reported() -> None:
    bad = SOURCE.replace("  - id: agent\n", "  - id: organisation\n").replace("{id: self,", "{id: agent_self,")
    bad = bad.replace("{id: agent, label: 委托代理人办理", "{id: agent_self, label: 委托代理人办理")
    found = _problems(bad)
    second = [i for i, line in enumerate(bad.splitlines(), 1) if line == "  - id: organisation"][1]
    assert (second, 9, "重复的情形编号 'organisation'") in found
    assert any(m == "情形 'organisation' 的选项 'agent_self' 重复" and line == _line(bad, "label: 委托代理人办理")
               for line, _c, m in found)


def test_a_question_needs_two_options_and_a_known_shape() -> None:
    one = SOURCE.replace("      - {id: personal, label: 个人经营}\n", "")
    assert any("situations.0.options" in m for *_, m in _problems(one))
    extra = SOURCE.replace("question: 以何种形式经营?", "question: 以何种形式经营?\n    hint: x")
    assert any(line == _line(extra, "hint: x") and "未知字段" in m for line, _c, m in _problems(extra))


def test_every_catalog_situation_is_valid_and_answers_select_materials() -> None:
    items = {i.definition.code: i.definition for i in read_catalog(ROOT / "catalog" / "items")}
    assert sum(1 for d in items.values() if d.situations) >= 7
    d = items["SPJYXK"]
    assert situations.conditional(d) == {"online_info", "power_of_attorney", "old_licence"}
    chosen = situations.selected_materials(d, {"application_kind": "change", "online": "absent", "agent": "self"})
    assert [m.id for m in chosen] == ["application", "business_licence", "layout_plans", "safety_rules", "old_licence"]
    with pytest.raises(InvalidInput) as err:
        situations.check_answers(d, {"application_kind": "change", "online": "absent"})
    assert err.value.extra["errors"][0]["field"] == "situation.agent"


SPJY = (ROOT / "catalog" / "items" / "spjy_xuke.yaml").read_text(encoding="utf-8")


def test_a_path_an_answer_selects_is_checked_at_its_line() -> None:
    unknown = SPJY.replace("path: [skip_inspection]", "path: [skip_inspektion]")
    (line, _col, message), = _problems(unknown)
    assert line == _line(unknown, "skip_inspektion")
    assert message == "情形 'application_kind' 的选项 'renew' 引用了未定义的触发器 'skip_inspektion'"
    # Without its own way past 现场核查, 延续 would leave a case stuck once accepted.
    stuck = SPJY.replace(", path: [skip_inspection]", "")
    skip = "  - {trigger: skip_inspection, label: 免于现场核查, from: accepted, to: review, roles: [reviewer]}\n"
    stuck = stuck.replace(skip, "")
    (line, _col, message), = _problems(stuck)
    assert line == _line(stuck, "id: renew")
    assert message == "选择情形 'application_kind' 的选项 'renew' 后, 案件到达状态 'accepted' 将没有可走的出口"
    twin = SPJY.replace("  - {trigger: skip_inspection,", "  - {trigger: quick_review, label: 快速审核, from: accepted,"
                        " to: review, roles: [reviewer]}\n  - {trigger: skip_inspection,")
    at = _line(twin, "path: [skip_inspection]")
    assert any("起止状态相同" in m and line == at for line, _c, m in _problems(twin))


def test_answers_select_the_path_of_the_flow() -> None:
    d = next(i.definition for i in read_catalog(ROOT / "catalog" / "items") if i.definition.code == "SPJYXK")
    renew = {"application_kind": "renew", "online": "absent", "agent": "self"}
    assert situations.selected_path(d, renew) == ["免于现场核查"]
    assert situations.path_closed(d, renew, "accepted", "review") is None
    assert situations.path_closed(d, renew, "accepted", "inspection") == (
        "所选情形不走此环节 (仅适用于「新办」、「变更许可事项」)")
    new = {**renew, "application_kind": "new"}
    assert situations.path_closed(d, new, "accepted", "inspection") is None
    assert situations.path_closed(d, new, "accepted", "review") is not None
    assert situations.path_closed(d, new, "received", "accepted") is None  # a step no answer selects
