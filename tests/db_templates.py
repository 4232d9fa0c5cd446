"""Test databases copied from templates made once per session, instead of migrated and seeded per test.

Migrating (two dozen revisions) and seeding the demo (catalog, directory, a seal per unit) took
2–5 s per test and database, most of the suite's time. Each template is built the long way once
per pytest process and per settings (seals are sealed with the installation key of ``data_dir``),
then copied into each test's database:

- SQLite: the template file is copied over the test's file (the engine disposed first).
- PostgreSQL: the template's rows are kept in a schema of their own in the same database; a test's
  database gets the public tables emptied and refilled from it in one script, sequences set as
  they were. Whatever a test did to the schema itself (a migration run down, a policy, a grant)
  is caught by a fingerprint of the catalog, and that test's database is rebuilt the long way.

A test that runs with the clock set (``core.clock.frozen``) before its database is made gets one
built at that instant, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from core import clock
from core.settings import get_settings

Tokens = list[dict[str, str]]
Build = Callable[[sa.Engine], Tokens | None]  # migrate (and seed) a fresh database

# Everything in the public schema a test could change besides rows: relations and their columns,
# row-level security and grants, policies, triggers, functions, the migration revision.
_FINGERPRINT = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT c.relname || ':' || c.relkind::text || ':' || c.relrowsecurity::text || ':' || coalesce(c.relacl::text, '')
         || ':' || coalesce(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), '') AS x
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE n.nspname = 'public'
  UNION ALL SELECT 'policy:' || p.polname || ':' || c.relname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
  UNION ALL SELECT 'trigger:' || t.tgname || ':' || c.relname || ':' || t.tgenabled::text FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'public' AND NOT t.tgisinternal
  UNION ALL SELECT 'function:' || p.proname || ':' || md5(p.prosrc) FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
) s
"""


def _settings_key() -> str:
    """What migrating and seeding read from the settings: the seal key (given, or the file in
    ``data_dir``) and the seal's validity; the zone the demo's dates are taken in. Not the rest,
    which tests set per test (an object folder) and which would make every test its own template."""
    s = get_settings()
    used = [str(s.data_dir.resolve()), s.seal_key, str(s.seal_valid_years), s.timezone]
    return hashlib.sha256("\0".join(used).encode()).hexdigest()[:16]


def _usable() -> bool:
    return clock._fixed is None  # noqa: SLF001 - a database seeded at a chosen instant is built then


# --- SQLite ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _SqliteTemplate:
    path: Path
    tokens: Tokens | None


_sqlite: dict[tuple[str, str], _SqliteTemplate] = {}


def sqlite_copy(engine: sa.Engine, name: str, build: Build, make: Callable[[str], sa.Engine],
                workdir: Path) -> Tokens | None:
    """Make ``engine``'s file a copy of the template ``name`` (built into ``workdir`` on first use)."""
    if not _usable():
        return build(engine)
    target = Path(engine.url.database or "")
    key = (name, _settings_key())
    template = _sqlite.get(key)
    if template is None:
        path = workdir / f"template-{name}-{key[1]}.db"
        fresh = make(f"sqlite:///{path}")
        tokens = build(fresh)
        fresh.dispose()
        with contextlib.closing(sqlite3.connect(path)) as conn:  # everything in the one file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        template = _sqlite[key] = _SqliteTemplate(path, tokens)
    engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template.path, target)
    return template.tokens


# --- PostgreSQL --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _PgTemplate:
    schema: str
    fingerprint: str
    restore: str  # one script: empty the public tables, refill them, set the sequences
    tokens: Tokens | None


_pg: dict[tuple[str, str, str], _PgTemplate] = {}


def pg_restore(engine: sa.Engine, name: str, build: Build, reset: Callable[[], None]) -> Tokens | None:
    """Give ``engine``'s database the template ``name``'s schema and rows. ``reset`` empties the
    public schema (the long way starts there); ``build`` migrates, and seeds when the template has
    tokens to give."""
    if not _usable():
        reset()
        return build(engine)
    key = (engine.url.render_as_string(hide_password=False), name, _settings_key())
    template = _pg.get(key)
    if template is None:
        if not any(k[0] == key[0] for k in _pg):  # this process's first: an earlier run's are stale
            _drop_templates(engine)
        reset()
        tokens = build(engine)
        template = _pg[key] = _capture(engine, f"test_template_{name}_{key[2]}", tokens)
    with engine.connect() as conn:
        same = conn.exec_driver_sql(_FINGERPRINT).scalar_one() == template.fingerprint
    if not same:  # the last test changed the schema itself: the long way, once
        reset()
        tokens = build(engine)
        with engine.connect() as conn:
            fresh = conn.exec_driver_sql(_FINGERPRINT).scalar_one()
        if fresh != template.fingerprint:
            # What lasts beyond the schema changed: default privileges a test granted (the regional
            # worker roles) give every new table its grants. The fresh migration is the truth now.
            template = _pg[key] = _capture(engine, template.schema, tokens)
        return tokens
    with engine.begin() as conn:
        conn.exec_driver_sql(template.restore)
    return template.tokens


def _drop_templates(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        stale = list(conn.exec_driver_sql(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ '^test_template_'").scalars())
    for schema in stale:  # one transaction each: a schema's tables take a lock apiece
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


def _capture(engine: sa.Engine, schema: str, tokens: Tokens | None) -> _PgTemplate:
    with engine.begin() as conn:
        tables = list(conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").scalars())
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        for t in tables:
            conn.exec_driver_sql(f'CREATE TABLE "{schema}"."{t}" AS SELECT * FROM public."{t}"')
        sequences = conn.exec_driver_sql(
            "SELECT sequencename, last_value, start_value FROM pg_sequences WHERE schemaname = 'public'").all()
        fingerprint = conn.exec_driver_sql(_FINGERPRINT).scalar_one()
    # Foreign keys and triggers are not fired while the rows are put back (the rows are a copy of
    # a consistent database, triggers' results included).
    lines = ["SET LOCAL session_replication_role = replica"]
    lines += [f'DELETE FROM public."{t}"' for t in tables]
    lines += [f'INSERT INTO public."{t}" OVERRIDING SYSTEM VALUE SELECT * FROM "{schema}"."{t}"' for t in tables]
    for seq, last, start in sequences:
        lines.append(f"SELECT setval('public.\"{seq}\"', {last}, true)" if last is not None
                     else f"SELECT setval('public.\"{seq}\"', {start}, false)")
    return _PgTemplate(schema, fingerprint, ";\n".join(lines), tokens)


def write_tokens(tokens: Tokens, path: Path) -> None:
    """Where the seed would have written them (tests that start the product read them there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tokens, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(path, 0o600)

