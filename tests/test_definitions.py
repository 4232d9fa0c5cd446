"""The item definition language: located problems, compilation, diagrams, the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import ROOT
from engine.catalog import parse, read_catalog, read_file
from states.compiler import compile_item
from states.diagram import to_mermaid, to_svg
from states.loader import DefinitionError

INVALID = sorted((Path(__file__).parent / "fixtures" / "invalid").glob("*.yaml"))
TONGBAN = [sys.executable, "-m", "cli"]


def expectation(path: Path) -> tuple[int, int, str]:
    m = re.match(r"# expect: (\d+):(\d+): (.*)", path.read_text(encoding="utf-8").splitlines()[0])
    assert m, f"{path} lacks an '# expect: line:col: message' header"
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_fixture_folder_covers_every_kind_of_problem() -> None:
    names = {p.stem for p in INVALID}
    assert {"unknown_state", "unknown_holder", "unreachable", "dead_end", "no_final",
            "duplicate_trigger", "unknown_guard", "unknown_job", "bad_limits", "yaml_syntax",
            "yaml_bomb"} <= names


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_definition_reports_its_own_message_at_its_line(path: Path) -> None:
    line, col, message = expectation(path)
    with pytest.raises(DefinitionError) as err:
        read_file(path)
    located = [(p.line, p.col) for p in err.value.problems if message in p.message]
    assert (line, col) in located, err.value.problems
    assert all(p.file == str(path) for p in err.value.problems)


def test_demo_catalog_is_valid_and_compiles() -> None:
    items = read_catalog(ROOT / "catalog" / "items")
    assert {i.definition.code for i in items} >= {"GGCSWSXK", "FGSFZRBG", "CBWLSXK", "MBXXZZHB"}
    ggcs = next(i.definition for i in items if i.definition.code == "GGCSWSXK")
    inspection = next(s for s in ggcs.states if s.id == "inspection")
    assert inspection.video == "inspection" and inspection.clock == "pause"
    for item in items:
        compiled = compile_item(item.definition)
        assert set(compiled.machine.events) == {t.trigger for t in item.definition.transitions}
    assert compile_item(next(i.definition for i in items if i.definition.code == "MBXXZZHB")).nested


def test_join_out_of_a_parallel_state_implies_all_branches_done() -> None:
    d = next(i.definition for i in read_catalog(ROOT / "catalog" / "items") if i.definition.code == "MBXXZZHB")
    c = compile_item(d)
    join = c.routes[("join", "joint_review")]
    assert c.guards_of(join) == ["all_branches_done"]
    model = type("M", (), {})()
    model.state = c.model_state("joint_review", {"education": "approved", "market": "pending"})
    assert not c.fire(model, "join", lambda g, dest: g != "all_branches_done")
    assert c.fire(model, "market_approve", lambda g, dest: True)
    assert c.parse_model_state(model.state) == ("joint_review", {"education": "approved", "market": "approved"})


def test_content_hash_changes_with_content() -> None:
    src = (ROOT / "catalog" / "items" / "cbw_lingshou_xuke.yaml").read_text(encoding="utf-8")
    a, b = parse(src), parse(src.replace("version: 3", "version: 4"))
    assert a.content_hash != b.content_hash and len(a.content_hash) == 64


def test_mermaid_and_svg_diagrams() -> None:
    d = next(i.definition for i in read_catalog(ROOT / "catalog" / "items") if i.definition.code == "MBXXZZHB")
    text = to_mermaid(d)
    assert text.startswith("stateDiagram-v2")
    assert "state joint_review {" in text and "        --" in text
    assert "received --> joint_review: 受理并分送各部门" in text
    svg = to_svg(d)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "教育部门审批" in svg


def test_cli_check_prints_located_problems_and_exits_nonzero(tmp_path: Path) -> None:
    bad = [p for p in INVALID if p.stem in ("unknown_state", "yaml_syntax")]
    done = subprocess.run([*TONGBAN, "items", "check", *map(str, bad)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 1
    for p in bad:
        line, col, message = expectation(p)
        assert f"{p}:{line}:{col}: " in done.stderr and message in done.stderr
    good = subprocess.run([*TONGBAN, "items", "check", "catalog/items"], capture_output=True, text=True,
                          cwd=ROOT)
    assert good.returncode == 0, good.stderr


def test_cli_graph_writes_svg(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    done = subprocess.run([*TONGBAN, "items", "graph", "catalog/items/ggcs_weisheng_xuke.yaml", "--svg", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "inspection --> review: 踏勘通过" in done.stdout
    assert "<svg" in out.read_text(encoding="utf-8")
