"""Comments name features, not issue numbers or documents that live outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import ROOT

OUTSIDE = re.compile(r"issue ?#\d+|\(#\d+\)|\bDecision \d\b|DOMAIN\.md|ARCHITECTURE\.md|\.\./shared/", re.I)
SOURCES = ("core", "states", "engine", "storage", "api", "flows", "video", "cli", "bench", "catalog", "tests",
           "docs", ".ci")
SUFFIXES = {".py", ".html", ".js", ".css", ".yaml", ".yml", ".md", ".toml", ""}


def references(text: str) -> list[str]:
    return [m.group(0) for m in OUTSIDE.finditer(text)]


def test_a_planted_reference_is_found() -> None:
    assert references("# the video service (issue #5) closes it; see Decision 3 in DOMAIN.md") == [
        "issue #5", "Decision 3", "DOMAIN.md"]
    assert references("# the video service closes it (跨域移交)") == []


def test_no_file_refers_to_an_issue_or_a_document_outside_the_repository() -> None:
    files = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "prefect.yaml", ROOT / "tongban"]
    for top in SOURCES:
        files += [p for p in (ROOT / top).rglob("*") if p.is_file() and p.suffix in SUFFIXES
                  and "__pycache__" not in p.parts and "artifacts" not in p.parts and "results" not in p.parts]
    me = Path(__file__).resolve()
    found = {str(p.relative_to(ROOT)): refs for p in files if p.resolve() != me
             and (refs := references(p.read_text(encoding="utf-8", errors="replace")))}
    assert found == {}
