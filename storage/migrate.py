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
