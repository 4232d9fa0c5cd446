"""No secret at rest in plaintext: an intake's query code is nowhere in the database, only its
hash, even when the answer is kept for an Idempotency-Key replay; kept answers expire."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from conftest import ALL_GGCS, Demo, answers_for

from core.clock import now
from core.settings import get_settings
from engine import idempotency
from engine.intake import hash_query_code
from storage import migrate
from storage.db import session_scope

BODY = {"item_code": "GGCSWSXK", "applicant": {"name": "测试申请人", "kind": "company", "phone": "0531-88880000"},
        "materials": ALL_GGCS, "situation": answers_for("GGCSWSXK", ALL_GGCS)}


def _intake(demo: Demo, key: str) -> tuple[bytes, dict]:
    r = demo.client.post("/api/v1/cases", json=BODY, headers=demo.h("陈静", **{"Idempotency-Key": key}))
    assert r.status_code == 201, r.text
    return r.content, r.json()


def _database_text(engine: sa.Engine) -> str:
    """Every value of every column of every table, as text (JSON, bytes and all)."""
    parts = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        parts.append(bytes(value).decode("latin-1"))
                    else:
                        parts.append(value if isinstance(value, str) else json.dumps(value, default=str,
                                                                                     ensure_ascii=False))
    return "\n".join(parts)


def _raw_dumps(engine: sa.Engine) -> list[bytes]:
    """Beneath the tables: SQLite's files (the database, its WAL and shared memory), or pg_dump."""
    if engine.dialect.name == "sqlite":
        path = Path(str(engine.url.database))
        files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")) if p.exists()]
        assert path in files and Path(f"{path}-wal") in files  # WAL mode: the newest pages are there
        return [p.read_bytes() for p in files]
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return [subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True).stdout]


def test_the_query_code_rests_nowhere_in_clear_and_a_replay_still_gives_it(demo: Demo) -> None:
    first_bytes, first = _intake(demo, "intake-1")
    number, code = first["number"], first["query_code"]
    assert demo.count("idempotency") == 1

    text = _database_text(demo.engine)
    assert code not in text and code.lower() not in text
    assert hash_query_code(number, code) in text  # the hash is what the progress query checks
    for blob in _raw_dumps(demo.engine):
        assert code.encode() not in blob and code.lower().encode() not in blob
    with demo.engine.connect() as conn:
        body, sealed = conn.execute(sa.text("SELECT body, sealed FROM idempotency")).one()
    assert "query_code" not in json.loads(body) and json.loads(body)["number"] == number
    assert sealed and code not in sealed

    # The clerk who lost the first answer retries: the same answer, byte for byte, nothing new.
    again_bytes, again = _intake(demo, "intake-1")
    assert again_bytes == first_bytes and again["query_code"] == code
    assert demo.count("cases") == 1 and demo.count("idempotency") == 1
    r = demo.client.get(f"/api/v1/progress/{number}", params={"code": code})
    assert r.status_code == 200, r.text  # the replayed code opens the applicant's progress query


def test_a_sealed_code_opens_only_with_this_installations_key(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    _, first = _intake(demo, "intake-2")
    monkeypatch.setattr(get_settings(), "idempotency_key", "another installation")
    _, again = _intake(demo, "intake-2")
    assert again["number"] == first["number"] and "query_code" not in again  # the case, not a second one
    assert demo.count("cases") == 1


def test_kept_answers_expire_and_an_expired_key_is_new(demo: Demo) -> None:
    _, first = _intake(demo, "intake-3")
    _intake(demo, "intake-4")
    hours = get_settings().idempotency_hours
    with demo.engine.begin() as conn:  # the first answer is older than the setting allows
        conn.execute(sa.text("UPDATE idempotency SET created_at = :t WHERE key = 'intake-3'"),
                     {"t": now() - timedelta(hours=hours, minutes=1)})
    _, again = _intake(demo, "intake-3")
    assert again["number"] != first["number"] and demo.count("cases") == 3  # taken in as a new request
    with demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE idempotency SET created_at = :t"), {"t": now() - timedelta(hours=hours + 1)})
    with session_scope(demo.engine) as s:
        assert idempotency.purge(s) == 2
    assert demo.count("idempotency") == 0


def test_the_sweep_purges_expired_answers(demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import drain
    from storage.object_factory import get_store

    monkeypatch.setattr(get_settings(), "object_dir", tmp_path / "objects")
    monkeypatch.setattr(get_settings(), "anchor_key", "the sweep's test key")
    get_store.cache_clear()
    _intake(demo, "intake-5")
    with demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE idempotency SET created_at = :t"), {"t": now() - timedelta(days=2)})
    drain.use_engine(demo.engine)
    try:
        counts = drain.deadline_sweep.fn()
    finally:
        drain.use_engine(None)
        get_store.cache_clear()
    assert counts["idempotency_purged"] == 1 and demo.count("idempotency") == 0
    assert counts["anchor_written"] == 1  # and the history got its anchor on the same schedule


def test_the_migration_takes_clear_codes_out_of_answers_kept_before_it(sqlite_db: sa.Engine) -> None:
    with sqlite_db.begin() as conn:
        command.downgrade(migrate._config(conn), "0009")
        conn.execute(sa.text("INSERT INTO idempotency (clerk_id, key, request_hash, status_code, body, created_at) "
                             "VALUES (1, 'k', 'h', 201, :b, :t)"),
                     {"b": json.dumps({"number": "N1", "query_code": "ABCDEFGHJK"}), "t": now()})
    migrate.upgrade(sqlite_db)
    with sqlite_db.connect() as conn:
        assert json.loads(conn.execute(sa.text("SELECT body FROM idempotency")).scalar_one()) == {"number": "N1"}
