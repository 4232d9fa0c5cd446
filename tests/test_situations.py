"""事项情形 in the item language: every reference checked, each problem at its own line."""

from __future__ import annotations

import pytest
from conftest import Demo

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
    assert message == "选择情形 'application_kind' 的选项 'renew' 后, 办件到达状态 'accepted' 将没有可走的出口"
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


# --- 一件事 bundles: every department may refuse; a branch the answers make unnecessary completes ---

CY = (ROOT / "catalog" / "items" / "yjs_kaiban_canyindian.yaml").read_text(encoding="utf-8")
CY_MATERIALS = ("application", "operator_id", "premises_proof", "layout_plans", "safety_rules")


def test_a_situation_may_select_only_an_automatic_step_inside_a_parallel_branch() -> None:
    manual = CY.replace("roles: [system], auto: true}\n  - {trigger: market_reject",
                        "roles: [approver]}\n  - {trigger: market_reject", 1)
    assert manual != CY
    (line, _col, message), = _problems(manual)
    assert line == _line(manual, "path: [fire_not_required]")
    assert message == "触发器 'fire_not_required' 在并联分支内, 情形在并联分支内只能选择自动步骤 (auto)"
    d = next(i.definition for i in read_catalog(ROOT / "catalog" / "items") if i.definition.code == "YJSKBCYD")
    answers = {"applicant_kind": "individual", "public_venue": "absent"}
    active = ["joint_review", "joint_review.market.pending", "joint_review.fire.pending"]
    assert situations.path_closed(d, answers, active, "joint_review.fire.not_required") is None
    assert situations.path_closed(d, {**answers, "public_venue": "present"}, active,
                                  "joint_review.fire.not_required") == "所选情形不走此环节 (仅适用于「否」)"


def _canyin(demo: Demo, venue: str) -> str:
    materials = {m: "received" for m in CY_MATERIALS}
    if venue == "present":
        materials |= {"fire_commitment": "received", "fire_plans": "received"}
    number = demo.create("陈静", "YJSKBCYD", materials,
                         situation={"applicant_kind": "individual", "public_venue": venue})["number"]
    demo.fire("陈静", number, "accept")
    return str(number)


def test_no_fire_check_for_a_venue_that_is_no_public_gathering_place(demo: Demo) -> None:
    """public_venue: absent — the fire branch completes by itself at 受理: 市场监管 alone decides."""
    small = _canyin(demo, "absent")
    case = demo.client.get(f"/api/v1/cases/{small}", headers=demo.h("吴磊")).json()
    assert {b["id"]: b["state"] for b in case["branches"]} == {"market": "pending", "fire": "not_required"}
    history = demo.client.get(f"/api/v1/cases/{small}/history", headers=demo.h("陈静")).json()["items"]
    assert [e["trigger"] for e in history[1:]] == ["accept", "fire_not_required"]
    assert demo.fire("吴磊", small, "market_approve")["state"]["id"] == "approved"  # joined: nobody waited on 消防
    big = _canyin(demo, "present")
    case = demo.client.get(f"/api/v1/cases/{big}", headers=demo.h("郑军")).json()
    assert {b["id"]: b["state"] for b in case["branches"]} == {"market": "pending", "fire": "pending"}
    refused = demo.fire("郑军", big, "fire_not_required", expect=403)  # the system's step alone
    assert refused["missing"] == ["role:system"]


@pytest.mark.parametrize(("code", "who", "trigger"), [
    ("YJSKBCYD", "郑军", "fire_reject"),       # 消防救援机构
    ("YJSKBCYD", "吴磊", "market_reject"),     # 市场监管部门
    ("YJSXSECS", "何晓", "health_reject"),     # 卫生健康部门: no 出生医学证明
    ("YJSXSECS", "林娜", "medins_reject"),     # 医疗保障部门
    ("YJSXSECS", "马超", "police_reject"),     # 公安户政
])
def test_every_department_of_a_bundle_may_refuse_it(demo: Demo, code: str, who: str, trigger: str) -> None:
    if code == "YJSKBCYD":
        number = _canyin(demo, "present")
    else:
        number = demo.create("陈静", "YJSXSECS", {m: "received" for m in (
            "application", "parents_id", "household_register", "marriage_certificate", "birth_record")},
            situation={"marital": "married"})["number"]
        demo.fire("陈静", number, "accept")
    assert demo.fire(who, number, trigger, expect=409)["guards"][0]["guard"] == "comment_given"  # with its reason
    done = demo.fire(who, number, trigger, comment="不符合条件")
    assert done["state"]["id"] == "rejected"
