"""Hostile item definitions: the loader never crashes, every refusal is located, bombs are quick."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import ROOT
from engine.catalog import parse
from states.loader import DefinitionError

VALID = (ROOT / "catalog" / "items" / "ggcs_weisheng_xuke.yaml").read_text(encoding="utf-8")
LINES = VALID.splitlines()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=20),
                    st.floats(allow_nan=False))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=30)


def _assert_located(text: str) -> None:
    try:
        parse(text, "fuzz.yaml")
    except DefinitionError as err:
        assert err.problems
        for p in err.problems:
            assert p.file == "fuzz.yaml" and p.line >= 1 and p.col >= 1 and p.message
            assert p.line <= max(1, text.count("\n") + 1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    _assert_located(text)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_arbitrary_yaml_documents(doc: object) -> None:
    _assert_located(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(LINES) - 1), st.text(max_size=60))
def test_one_line_of_a_real_item_replaced(index: int, replacement: str) -> None:
    lines = list(LINES)
    lines[index] = replacement
    _assert_located("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID)), st.integers(1, 40))
def test_real_item_truncated_or_spliced(cut: int, width: int) -> None:
    _assert_located(VALID[:cut])
    _assert_located(VALID[:cut] + VALID[cut + width:])


def test_alias_bomb_and_deep_nesting_are_refused() -> None:
    bomb = "a0: &a0 [" + ", ".join(["x"] * 10) + "]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 12))
    deep = "a: " + "[" * 5000 + "]" * 5000
    for text, words in ((bomb, "文档过大"), (deep, "嵌套过深")):
        try:
            parse(text, "bomb.yaml")
        except DefinitionError as err:
            assert words in err.problems[0].message or "YAML" in err.problems[0].message
        else:  # pragma: no cover
            raise AssertionError("accepted a bomb")


def test_positions_count_lines_as_editors_do() -> None:
    """PyYAML also breaks lines at NEL (U+0085); the reported line is the editor's line."""
    with pytest.raises(DefinitionError) as err:
        parse("\x85\t", "fuzz.yaml")
    assert (err.value.problems[0].line, err.value.problems[0].col) == (1, 2)
