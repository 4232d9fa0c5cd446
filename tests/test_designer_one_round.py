"""The designer's check: the schema's problems and the checker's in one round (states.repair), with
line numbers and "did you mean"; what only follows from the repair is not reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Demo
from test_workbench_pages import _hidden, _login

from engine import designer_help, extensions
from states.loader import DefinitionError, parse_item

SOURCE = (Path(__file__).parent.parent / "catalog" / "items" / "fgs_fuzeren_biangeng.yaml").read_text("utf-8")
# Three schema problems (a value outside the choice, an unknown field, a missing one) and two the
# checker finds (a misspelt state, a misspelt role), each on a line of its own.
DRAFT = (SOURCE.replace("version: 4", "version: 5").replace("case_type: 即办件", "case_type: 即办")
         .replace("to: handling, roles: [clerk]", "to: acepted, roles: [clerc]")
         .replace("{trigger: approve, label: 核准,", "{trigger: approve, lable: 核准,")
         .replace("from: handling, to: rejected,", "from: handling,"))


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _problems(source: str) -> list[tuple[int, str]]:
    with pytest.raises(DefinitionError) as err:
        parse_item(source, "draft", vocabulary=extensions.vocabulary())
    return [(p.line, p.message) for p in err.value.problems]


def test_schema_and_checker_problems_come_in_one_round_at_their_lines() -> None:
    found = _problems(DRAFT)
    messages = [m for _, m in found]
    assert (_line(DRAFT, "case_type:"), "case_type: Input should be '即办件' or '承诺件'") in found
    assert (_line(DRAFT, "lable"), "transitions.1.lable: 未知字段") in found
    assert (_line(DRAFT, "trigger: reject"), "transitions.2.to: 缺少必填字段") in found
    # The checker's, though the schema refused the definition:
    assert (_line(DRAFT, "acepted"), "未知的状态 'acepted'") in found
    assert any(line == _line(DRAFT, "clerc") and m.startswith("未知的人员角色 'clerc'") for line, m in found)
    # Nothing about the stand-in put where `to` is missing, nor about the cut parts.
    assert not any("__" in m for m in messages)
    # Fixed where the schema speaks, the checker's problems are the same ones.
    schema_fixed = (DRAFT.replace("case_type: 即办", "case_type: 即办件").replace("lable:", "label:")
                    .replace("驳回, from: handling, roles", "驳回, from: handling, to: rejected, roles"))
    assert sorted(m for m in messages if ":" not in m.split(" ")[0]) == sorted(m for _, m in _problems(schema_fixed))


def test_what_follows_from_a_repair_is_not_reported() -> None:
    # A final state refused (final: maybe, a stand-in makes it not final) and a state that is no
    # mapping at all (cut): neither the stand-in's "not final, no exit" nor the cut's unreachable
    # states are reported; the misspelt role elsewhere is.
    draft = (SOURCE.replace("{id: rejected, label: 驳回, holder: competent, final: true,",
                            "{id: rejected, label: 驳回, holder: competent, final: maybe,")
             .replace("to: handling, roles: [clerk]", "to: handling, roles: [clark]"))
    found = _problems(draft)
    refused = "states.5.final: Input should be a valid boolean, unable to interpret input"
    assert (_line(draft, "final: maybe"), refused) in found
    assert [m for _, m in found if "rejected" in m] == []
    assert any(line == _line(draft, "clark") and m.startswith("未知的人员角色 'clark'") for line, m in found)
    cut = _problems(draft.replace("  - {id: withdrawn,", "  - 42\n  - {id: withdrawn,"))
    assert any(m.startswith("未知的人员角色 'clark'") for _, m in cut)
    assert not any("不可达" in m or "没有任何出口转换" in m for _, m in cut)


def test_did_you_mean_for_states_roles_and_triggers() -> None:
    known = designer_help.names_in(DRAFT)
    assert designer_help.did_you_mean("未知的状态 'acepted'", known | {"accepted"}) == "accepted"
    assert designer_help.did_you_mean("未知的人员角色 'clerc' (可用: clerk, reviewer)", known) == "clerk"
    assert designer_help.did_you_mean("文书 'x' 引用了未定义的触发器 'aprove'", known) == "approve"


def test_the_page_shows_every_problem_with_its_line_and_hint(sqlite_demo: Demo) -> None:
    sun = _login(sqlite_demo, "孙设计")
    home = sun.get("/ui/designer").text
    checked = sun.post("/ui/designer/check", data={**_hidden(home, "/ui/designer/check"), "source": DRAFT})
    assert checked.status_code == 422
    start = checked.text.index('id="problems"')
    problems = checked.text[start:checked.text.index("</ol>", start)]
    assert "case_type: 须为" in problems and "未知字段" in problems and "缺少必填字段" in problems
    assert "未知的人员角色 &#39;clerc&#39;" in problems and "您是否要写「<code>clerk</code>」" in problems
    assert "未知的状态 &#39;acepted&#39;" in problems
    assert problems.count("acepted&#39;") == 1  # once: the checker's report, not the raw-text pass too
    lines = [int(n) for n in re.findall(r'data-line="(\d+)"', problems)]
    assert _line(DRAFT, "clerc") in lines and _line(DRAFT, "case_type:") in lines
    assert 'id="publish" disabled' in checked.text
    assert 'id="diff"' in checked.text  # against the published version 4, even while refused
