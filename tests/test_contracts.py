"""The architecture contracts bite: planted violations in a throw-away package tree fail them.

``./tongban test`` runs ``ruff check``, ``lint-imports`` (the ``[tool.importlinter]`` contracts
of pyproject.toml) and ``.ci/import_cycles.py`` before pytest; here the same checkers run on a
temporary copy of the project's layout with one violation each.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.settings import ROOT

PACKAGES = ["core", "states", "engine", "storage", "api", "flows", "video", "cli"]
CYCLES = ROOT / ".ci" / "import_cycles.py"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def tree(root: Path, files: dict[str, str]) -> Path:
    """The eight project packages, empty, plus ``files`` (path → source)."""
    for pkg in PACKAGES:
        (root / pkg).mkdir(parents=True, exist_ok=True)
        (root / pkg / "__init__.py").write_text("")
    for rel, src in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != root and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(src)
    return root


def cycles(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CYCLES), "--root", str(root)], capture_output=True, text=True,
                          timeout=60)


def project_contracts_ini() -> str:
    """The project's own import-linter contracts, as an INI file for a tree elsewhere."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = ["[importlinter]", "root_packages =", *(f"    {p}" for p in cfg["root_packages"])]
    for i, contract in enumerate(cfg["contracts"]):
        lines += ["", f"[importlinter:contract:{i}]"]
        for key, value in contract.items():
            if isinstance(value, list):
                lines += [f"{key} =", *(f"    {v}" for v in value)]
            else:
                lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    cfg = root / ".importlinter"
    cfg.write_text(project_contracts_ini())
    return subprocess.run([str(LINT_IMPORTS), "--config", str(cfg), "--no-cache"], cwd=root,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=120)


def test_cycle_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    root = tree(tmp_path, {"engine/a.py": "from engine import b\n", "engine/b.py": "import core.c\n",
                           "core/c.py": "X = 1\n"})
    done = cycles(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "none in" in done.stdout


def test_cycle_checker_names_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "storage/objects.py": "def get():\n    from storage.factory import make\n    return make()\n",
        "storage/factory.py": "from storage.objects import get\n\ndef make():\n    return 1\n",
        "api/x.py": "from . import y\n",  # relative imports resolve too
        "api/y.py": "import api.z\n",
        "api/z.py": "from .x import *\n",
        "engine/ok.py": "import storage.objects\n",
    })
    done = cycles(root)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "import cycle: storage.factory -> storage.objects -> storage.factory" in out
    assert "storage/objects.py:2: storage.objects imports storage.factory (in a function)" in out
    assert "import cycle: api.x -> api.y -> api.z -> api.x" in out
    assert "import cycles: 2 found" in out
    assert "engine.ok" not in out  # importing into a cycle is no cycle


def test_cycle_checker_counts_type_checking_imports_and_cycles_across_packages(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        "video/hub.py": "from video import messages\n",
        "video/messages.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from video.hub import Hub\n",
        "flows/f.py": "import cli.main\n",
        "cli/main.py": "def main():\n    import flows.f\n",
    })
    out = cycles(root).stdout
    assert "video.hub -> video.messages -> video.hub" in out and "(under TYPE_CHECKING)" in out
    assert "cli.main -> flows.f -> cli.main" in out


def test_the_project_contracts_pass_a_clean_tree(tmp_path: Path) -> None:
    root = tree(tmp_path, {"engine/a.py": "import storage.db\nimport states.s\n", "storage/db.py": "import core.c\n",
                           "core/c.py": "", "states/s.py": "import pydantic\n", "api/r.py": "import engine.a\n"})
    done = lint_imports(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("files", "broken"), [
    ({"states/schema.py": "def f():\n    from engine import machine\n", "engine/machine.py": ""},
     "states imports no project package"),
    ({"states/schema.py": "import core.settings\n", "core/settings.py": ""}, "states imports no project package"),
    ({"storage/db.py": "from engine.actors import now\n", "engine/actors.py": ""}, "storage never imports engine"),
    ({"engine/jobs.py": "import flows.outbox\n", "flows/outbox.py": ""},
     "engine never imports api, flows, video, cli"),
    ({"engine/a.py": "import engine.b\n", "engine/b.py": "from video import hub\n", "video/hub.py": ""},
     "engine never imports api, flows, video, cli"),
], ids=["states-engine-deferred", "states-core", "storage-engine", "engine-flows", "engine-video-indirect"])
def test_the_project_contracts_break_on_a_planted_import(tmp_path: Path, files: dict[str, str],
                                                         broken: str) -> None:
    done = lint_imports(tree(tmp_path, files))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{broken} BROKEN" in done.stdout
    assert "1 broken" in done.stdout
