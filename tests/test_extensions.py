"""Extensions are declared once, where implemented: every registry entry has its implementation
and zh-CN label, every declaring module is listed in ``engine.extensions.MODULES``, and what
``items check`` accepts is exactly what the registries hold."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from core.registry import Entry, Registry, RegistryError
from core.settings import ROOT
from engine import catalog, extensions
from engine.extensions import GUARDS, JOBS, VIDEO_KINDS
from states.loader import DefinitionError

REGISTRY_NAMES = {"GUARDS", "JOBS", "VIDEO_KINDS", "DOCUMENTS"}
PACKAGES = ("core", "states", "engine", "storage", "api", "flows", "video", "cli")


def declaring_modules(root: Path) -> set[str]:
    """Modules that declare an extension: ``@GUARDS.register(…)`` or ``VIDEO_KINDS.add(…)``."""
    found = set()
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("register", "add")
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in REGISTRY_NAMES):
                    found.add(".".join(path.relative_to(root).with_suffix("").parts))
    return found


@contextmanager
def planted(registry: Registry[Any], entry: Entry[Any]) -> Iterator[None]:
    """An entry slipped in past ``Registry.add`` — what a hand-kept dict used to allow."""
    registry._entries[entry.name] = entry
    try:
        yield
    finally:
        del registry._entries[entry.name]


def test_every_entry_has_its_implementation_and_label() -> None:
    assert extensions.problems() == []
    assert len(GUARDS) >= 4 and len(JOBS) >= 6 and len(VIDEO_KINDS) >= 3


@pytest.mark.parametrize("entry, problem", [
    (Entry("print_money", "", lambda e, j: {}, "tests"), "缺少中文标签"),
    (Entry("print_money", "print money", lambda e, j: {}, "tests"), "缺少中文标签"),
    (Entry("print_money", "印钞", None, "tests"), "没有实现"),
])
def test_the_completeness_check_fails_on_a_planted_entry(entry: Entry[Any], problem: str) -> None:
    with planted(JOBS, entry):
        assert any(problem in p and "print_money" in p for p in extensions.problems())
    assert extensions.problems() == []


def test_a_declaration_without_label_or_implementation_is_refused_at_import() -> None:
    reg: Registry[Any] = Registry("自动任务")
    with pytest.raises(RegistryError, match="缺少中文标签"):
        reg.add("print_money", "", lambda: None)
    with pytest.raises(RegistryError, match="没有实现"):
        reg.add("print_money", "印钞", None)
    with pytest.raises(RegistryError, match="名称"):
        reg.add("Print-Money", "印钞", lambda: None)
    reg.register("print_money", "印钞")(first := (lambda: None))
    with pytest.raises(RegistryError, match="重复声明"):
        reg.add("print_money", "印钞", lambda: None)
    reg.add("print_money", "印钞", first)  # the same declaration imported twice is harmless


def test_every_declaring_module_is_listed_in_one_place() -> None:
    assert declaring_modules(ROOT) == set(extensions.MODULES)


def test_the_module_scan_sees_an_unlisted_declaration(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "printing.py").write_text(
        'from engine.extensions import JOBS\n\n\n@JOBS.register("print_money", "印钞")\n'
        'def print_money(engine, job):\n    return {}\n', encoding="utf-8")
    assert declaring_modules(tmp_path) == {"flows.printing"}
    assert "flows.printing" not in extensions.MODULES


def test_items_check_accepts_exactly_what_is_registered() -> None:
    source = (ROOT / "tests" / "fixtures" / "invalid" / "unknown_job.yaml").read_text(encoding="utf-8")
    with pytest.raises(DefinitionError, match="未知的自动任务 'print_money'"):
        catalog.parse(source, "unknown_job.yaml")

    def print_money(engine: Any, job: Any) -> dict[str, Any]:
        return {}

    with planted(JOBS, Entry("print_money", "印钞", print_money, __name__)):
        catalog.parse(source, "unknown_job.yaml")  # now implemented: accepted


def test_vocabulary_labels_come_from_the_registries() -> None:
    v = extensions.vocabulary()
    assert v.jobs["handoff"] == "跨域移交" and v.guards["comment_given"] == "已填写意见"
    assert v.video_kinds["inspection"] == "远程踏勘" and v.checklist_kinds == {"inspection"}
    assert v.follow_ups["issue_certificate"] == ("issue", "issue_all")
