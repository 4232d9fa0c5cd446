"""Tamper-evident history and token revocation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from core.settings import ROOT
from engine.history import Break, verify
from storage.db import session_scope


def _verify(demo: Demo) -> list[Break | int]:
    with session_scope(demo.engine) as s:
        return list(verify(s))


def _advance_some(demo: Demo) -> list[str]:
    numbers = []
    for _ in range(3):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        out = demo.fire("陈静", case["number"], "accept", case["version"])
        demo.fire("陈静", case["number"], "start_review", out["version"])
        numbers.append(case["number"])
    return numbers


def test_untouched_history_verifies(demo: Demo) -> None:
    _advance_some(demo)
    assert _verify(demo) == [3]


def test_edited_event_is_pointed_at(demo: Demo) -> None:
    numbers = _advance_some(demo)
    with demo.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE history SET actor_name = '冒名' WHERE seq = 2 AND case_id = "
            "(SELECT id FROM cases WHERE number = :n)"), {"n": numbers[1]})
    result = _verify(demo)
    assert result[-1] == 3
    assert result[:-1] == [Break(numbers[1], 2, "事件内容与其哈希不符: 该事件被改动")]


def test_deleted_events_are_detected(demo: Demo) -> None:
    numbers = _advance_some(demo)
    with demo.engine.begin() as conn:
        for n, seq in ((numbers[0], 2), (numbers[2], 3)):  # a middle event and the newest one
            conn.execute(sa.text("DELETE FROM history WHERE seq = :s AND case_id = "
                                 "(SELECT id FROM cases WHERE number = :n)"), {"n": n, "s": seq})
    breaks = [r for r in _verify(demo) if isinstance(r, Break)]
    assert [(b.number, b.seq) for b in breaks] == [(numbers[0], 2), (numbers[2], 3)]


def test_cli_audit_verify_exit_code(sqlite_demo: Demo, tmp_path: Path) -> None:
    numbers = _advance_some(sqlite_demo)
    env = {"TONGBAN_DATABASE_URL": str(sqlite_demo.engine.url), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "cli", "audit", "verify"], cwd=ROOT, env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "已校验 3 个案件, 0 个被篡改" in ok.stdout
    with sqlite_demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE history SET comment = 'x' WHERE seq = 3 AND case_id = "
                             "(SELECT id FROM cases WHERE number = :n)"), {"n": numbers[0]})
    bad = subprocess.run([sys.executable, "-m", "cli", "audit", "verify"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and f"案件 {numbers[0]} 第 3 条事件" in bad.stderr


def test_revoked_and_expired_tokens_are_refused(demo: Demo) -> None:
    from engine.actors import revoke_tokens

    assert demo.client.get("/api/v1/items", headers=demo.h("王芳")).status_code == 200
    with session_scope(demo.engine) as s:
        assert revoke_tokens(s, demo.actor("王芳").id) == 1
    r = demo.client.get("/api/v1/items", headers=demo.h("王芳"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    with demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_tokens SET expires_at = :t"), {"t": "2000-01-01 00:00:00+00:00"})
    assert demo.client.get("/api/v1/items", headers=demo.h("李强")).status_code == 401
    with demo.engine.connect() as conn:  # tokens are stored hashed, never in clear
        stored = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert demo.tokens["李强"] not in stored and all(len(h) == 64 for h in stored)
