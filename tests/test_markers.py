"""The marker tables in conftest name tests that exist, so a rename cannot quietly put a slow test
back into the quick run (or drop a mark that a selection relies on)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import MARKS_BY_MODULE, MARKS_BY_TEST

HERE = Path(__file__).parent


def test_every_module_and_test_in_the_marker_tables_exists() -> None:
    missing = [m for m in MARKS_BY_MODULE if not (HERE / m).is_file()]
    for entry in MARKS_BY_TEST:
        module, name = entry.split("::")
        path = HERE / module
        tree = ast.parse(path.read_text()) if path.is_file() else ast.Module(body=[], type_ignores=[])
        if not any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
            missing.append(entry)
    assert not missing, f"marker tables in tests/conftest.py name tests that do not exist: {missing}"
