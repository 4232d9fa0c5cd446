"""Schema changes go through Alembic; ``upgrade`` brings any database to the head revision."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")


def revision(engine: sa.Engine, message: str) -> None:
    """Autogenerate a migration from the tables (a developer's tool)."""
    with engine.begin() as conn:
        command.revision(_config(conn), message=message, autogenerate=True)


def check(engine: sa.Engine) -> None:
    """Raise if the tables and the migrations disagree."""
    with engine.begin() as conn:
        command.check(_config(conn))


def heads() -> set[str]:
    """The head revisions of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return set(ScriptDirectory.from_config(cfg).get_heads())


def applied(conn: sa.Connection) -> set[str]:
    """The revisions the database says it is at (empty: never migrated). Read directly: Alembic's
    migration context logs two lines per call, and readiness probes call this every few seconds."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return set()
    return set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
