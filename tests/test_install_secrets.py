"""Signing secrets: configured, or the installation's own — never a default from the source."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from core.settings import ROOT


def _run(code: str, data_dir: Path, **env: str) -> str:
    full = {k: v for k, v in os.environ.items() if k != "TONGBAN_CARRIER_SECRET"}
    full |= {"TONGBAN_DATA_DIR": str(data_dir), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True,
                          text=True, check=True).stdout.strip()


SIGN = "from engine.delivery import sign; print(sign(b'{}', '1700000000'))"


def test_an_installation_makes_its_own_carrier_secret_once(tmp_path: Path) -> None:
    first = _run(SIGN, tmp_path / "a")
    assert first == _run(SIGN, tmp_path / "a")  # kept: the same after a restart
    assert first != _run(SIGN, tmp_path / "b")  # another installation, another secret
    secret_file = tmp_path / "a" / "carrier-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    printed = subprocess.run([str(Path(sys.executable).parent / "tongban"), "carrier-secret"], cwd=ROOT,
                             env={**os.environ, "TONGBAN_DATA_DIR": str(tmp_path / "a")},
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == secret_file.read_text().strip() and len(printed) == 64
    # The old built-in default no longer signs anything this installation accepts.
    forged = _run(SIGN.replace("sign(b'{}', '1700000000')", "sign(b'{}', '1700000000', 'tongban-dev-carrier-secret')"),
                  tmp_path / "a")
    assert forged != first


def test_a_configured_secret_wins(tmp_path: Path) -> None:
    configured = _run(SIGN, tmp_path / "c", TONGBAN_CARRIER_SECRET="shared-with-the-carrier")
    assert configured == _run(SIGN.replace("'1700000000')", "'1700000000', 'shared-with-the-carrier')"),
                              tmp_path / "d")
    assert not (tmp_path / "c" / "carrier-secret").exists()
