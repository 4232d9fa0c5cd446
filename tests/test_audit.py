"""Tamper-evident history (the chain, and signed anchors outside the database) and token revocation."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.settings import ROOT
from engine import anchors
from engine.history import Break, event_hash, verify
from storage.db import session_scope
from storage.object_local import LocalStore
from storage.objects import ObjectStore
from storage.sweep import sweep


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
    assert ok.returncode == 0 and "已校验 3 个办件, 0 个被篡改" in ok.stdout
    with sqlite_demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE history SET comment = 'x' WHERE seq = 3 AND case_id = "
                             "(SELECT id FROM cases WHERE number = :n)"), {"n": numbers[0]})
    bad = subprocess.run([sys.executable, "-m", "cli", "audit", "verify"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and f"办件 {numbers[0]} 第 3 条事件" in bad.stderr


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


# -- anchors: what a database writer cannot rewrite ------------------------------------------------
# The attacker writes the database (and may write new objects to the store) but has no data
# directory: no anchor key.

ANCHORS = "tongban-evidence-anchors"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _anchor(demo: Demo, store: ObjectStore, key: Ed25519PrivateKey, **kw: Any) -> anchors.Written:
    with session_scope(demo.engine) as s:
        return anchors.write(s, store, key, bucket_name=kw.pop("bucket", ANCHORS), **kw)


def _against_latest(demo: Demo, store: ObjectStore, key: Ed25519PrivateKey,
                    bucket: str = ANCHORS) -> tuple[list[Break | int], list[anchors.Refused]]:
    anchor, refused = anchors.latest(store, key.public_key(), bucket)
    assert anchor is not None
    with session_scope(demo.engine) as s:
        return list(verify(s, anchored=anchor.cases)), refused


def _case_id(conn: sa.Connection, number: str) -> int:
    return int(conn.execute(sa.text("SELECT id FROM cases WHERE number = :n"), {"n": number}).scalar_one())


def _rewrite(demo: Demo, number: str, seq: int, **changes: Any) -> None:
    """The attack: edit an event, then recompute hash, prev_hash and the case's last_hash with the
    product's own ``event_hash``; the plain chain holds again."""
    with demo.engine.begin() as conn:
        case_id = _case_id(conn, number)
        conn.execute(sa.text(f"UPDATE history SET {', '.join(f'{k} = :{k}' for k in changes)} "
                             "WHERE case_id = :c AND seq = :s"), {**changes, "c": case_id, "s": seq})
        _rechain(conn, number, case_id)


def _rechain(conn: sa.Connection, number: str, case_id: int) -> None:
    from storage.tables import T_HIST

    prev = None
    rows = conn.execute(sa.select(T_HIST).where(T_HIST.c.case_id == case_id).order_by(T_HIST.c.seq)).mappings().all()
    for row in rows:
        h = event_hash(number, dict(row), prev)
        conn.execute(sa.update(T_HIST).where(T_HIST.c.id == row["id"]).values(prev_hash=prev, hash=h))
        prev = h
    conn.execute(sa.text("UPDATE cases SET last_hash = :h, version = :v WHERE id = :c"),
                 {"h": prev, "v": len(rows), "c": case_id})


def _breaks(result: list[Break | int]) -> list[tuple[str, str]]:
    return [(b.number, b.kind) for b in result if isinstance(b, Break)]


def test_untouched_history_verifies_against_its_anchor_and_later_events_are_fine(
        demo: Demo, tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = LocalStore(tmp_path / "objects")
    numbers = _advance_some(demo)
    w = _anchor(demo, store, key)
    assert w.anchor is not None and w.anchor.seq == 1 and not w.carried and not w.refused
    assert set(w.anchor.cases) == set(numbers)
    assert _anchor(demo, store, key).anchor is None  # nothing changed: nothing written
    demo.fire("陈静", numbers[0], "approve")  # after the anchor: fine
    demo.create("陈静", "GGCSWSXK", ALL_GGCS)  # a case the anchor does not know yet: fine
    assert _against_latest(demo, store, key) == ([4], [])
    second = _anchor(demo, store, key).anchor
    assert second is not None and second.seq == 2 and second.prev == w.anchor.sha256
    st = store.stat(ANCHORS, second.key)
    assert st is not None and st.retain_until is not None  # under retention, like all evidence
    with session_scope(demo.engine) as s:  # no row refers to anchors, yet they are no orphans
        assert sweep(s, store, prefix="tongban", grace_seconds=0).orphans == []
    assert _against_latest(demo, store, key) == ([4], [])


def test_a_recomputed_chain_is_caught_as_rewritten(demo: Demo, tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = LocalStore(tmp_path / "objects")
    numbers = _advance_some(demo)
    _anchor(demo, store, key)
    _rewrite(demo, numbers[1], 2, actor_name="冒名")
    assert _verify(demo) == [3]  # the plain chain is fooled, as it was before anchors
    result, refused = _against_latest(demo, store, key)
    assert _breaks(result) == [(numbers[1], "rewritten")] and result[-1] == 3 and not refused
    # The next anchor does not launder it: the case keeps its anchored head, and stays reported.
    demo.fire("陈静", numbers[0], "approve")
    w = _anchor(demo, store, key)
    assert [(b.number, b.kind) for b in w.carried] == [(numbers[1], "rewritten")]
    assert w.anchor is not None and w.anchor.cases[numbers[1]] == w.previous.cases[numbers[1]]  # type: ignore[union-attr]
    assert _breaks(_against_latest(demo, store, key)[0]) == [(numbers[1], "rewritten")]


def test_dropped_last_events_are_caught_as_truncated(demo: Demo, tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = LocalStore(tmp_path / "objects")
    numbers = _advance_some(demo)
    _anchor(demo, store, key)
    with demo.engine.begin() as conn:  # drop the newest event, then fix last_hash and version
        case_id = _case_id(conn, numbers[2])
        conn.execute(sa.text("DELETE FROM history WHERE case_id = :c AND seq = 3"), {"c": case_id})
        _rechain(conn, numbers[2], case_id)
    assert _verify(demo) == [3]
    result, _ = _against_latest(demo, store, key)
    assert _breaks(result) == [(numbers[2], "truncated")]
    b = next(r for r in result if isinstance(r, Break))
    assert b.seq == 3 and "历史被截断" in b.reason


def test_a_deleted_case_is_caught(demo: Demo, tmp_path: Path, key: Ed25519PrivateKey) -> None:
    from sqlmodel import SQLModel

    store = LocalStore(tmp_path / "objects")
    numbers = _advance_some(demo)
    _anchor(demo, store, key)
    with demo.engine.begin() as conn:
        case_id = _case_id(conn, numbers[0])
        for table in reversed(SQLModel.metadata.sorted_tables):
            if "case_id" in table.c:
                conn.execute(sa.delete(table).where(table.c.case_id == case_id))
        conn.execute(sa.text("DELETE FROM cases WHERE id = :c"), {"c": case_id})
    assert _verify(demo) == [2]
    result, _ = _against_latest(demo, store, key)
    assert _breaks(result) == [(numbers[0], "deleted")] and result[-1] == 2


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_an_anchor_forged_without_the_key_is_refused(demo: Demo, tmp_path: Path, key: Ed25519PrivateKey,
                                                    kind: str, request: pytest.FixtureRequest) -> None:
    from storage.object_s3 import S3Store

    if kind == "local":
        store: ObjectStore = LocalStore(tmp_path / "objects")
        bucket = ANCHORS
    else:  # a real S3-protocol server, object lock and all
        store = S3Store(request.getfixturevalue("moto_endpoint"), "test", "test")
        bucket = anchors.bucket("t" + uuid.uuid4().hex[:10])
    numbers = _advance_some(demo)
    genuine = _anchor(demo, store, key, bucket=bucket).anchor
    assert genuine is not None
    _rewrite(demo, numbers[0], 1, comment="补录")
    # The attacker anchors the rewritten state with a key of their own, in the same bucket.
    forged = _anchor(demo, store, Ed25519PrivateKey.generate(), bucket=bucket, force=True).anchor
    assert forged is not None and forged.seq == 1  # it could not even read ours
    result, refused = _against_latest(demo, store, key, bucket)
    assert [r.key for r in refused] == [forged.key] and "签名无效" in refused[0].reason
    assert _breaks(result) == [(numbers[0], "rewritten")]  # judged by the genuine anchor
    # Bytes altered under a genuine anchor's key are refused too (content no longer its hash).
    data = bytearray(b"".join(store.get(bucket, genuine.key)))
    data[-1] ^= 1
    with pytest.raises(anchors.AnchorRefused):
        anchors.decode(bytes(data), key.public_key(), bucket, genuine.key)


@pytest.mark.slow
def test_cli_anchor_then_verify_reports_the_rewritten_case(sqlite_demo: Demo, tmp_path: Path) -> None:
    numbers = _advance_some(sqlite_demo)
    env = {"TONGBAN_DATABASE_URL": str(sqlite_demo.engine.url), "PATH": "/usr/bin:/bin",
           "TONGBAN_DATA_DIR": str(tmp_path / "data"), "TONGBAN_OBJECT_DIR": str(tmp_path / "objects")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "audit", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True)

    none = cli("verify")
    assert none.returncode == 0 and "尚无历史锚点" in none.stdout
    made = cli("anchor")
    assert made.returncode == 0 and "已写入历史锚点 #1: 3 个办件" in made.stdout, made.stderr
    ok = cli("verify")
    assert ok.returncode == 0 and "已校验 3 个办件, 0 个被篡改, 对照锚点 #1" in ok.stdout, ok.stderr
    _rewrite(sqlite_demo, numbers[1], 2, actor_name="冒名")
    bad = cli("verify")
    assert bad.returncode == 1, bad.stdout
    assert f"办件 {numbers[1]} 第 3 条事件: 历史被改写" in bad.stderr and "1 个被篡改" in bad.stdout
    again = cli("anchor")  # the writer refuses to launder it
    assert again.returncode == 1 and f"办件 {numbers[1]} 与上一锚点不符" in again.stderr
    public = cli("public-key").stdout.strip()
    assert len(public) == 64 and (tmp_path / "data" / "anchor-key").stat().st_mode & 0o077 == 0
    # A machine that only verifies holds the public key alone.
    env["TONGBAN_DATA_DIR"] = str(tmp_path / "auditor")
    env["TONGBAN_ANCHOR_PUBLIC_KEY"] = public
    audited = cli("verify")
    assert audited.returncode == 1 and f"办件 {numbers[1]} 第 3 条事件: 历史被改写" in audited.stderr
    assert not (tmp_path / "auditor" / "anchor-key").exists()
