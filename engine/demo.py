"""The embedded demo: publish the catalog, load the alliance, give each unit a seal, and create demo clerks once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlmodel import Session

from engine import seals
from engine.actors import add_clerk
from engine.catalog import publish, read_catalog
from engine.dashboard import set_supervised_regions
from engine.directory import load_alliance, units
from storage.tables import Clerk


def publish_catalog(session: Session, directory: Path, by: str = "catalog") -> list[tuple[str, int, bool]]:
    out = []
    for item in read_catalog(directory):
        row, created = publish(session, item, by)
        out.append((row.code, row.version, created))
    return out


def seed(session: Session, catalog_dir: Path, alliance_file: Path, tokens_file: Path,
         token_days: int) -> list[dict[str, str]]:
    """Idempotent: clerks and their tokens are created on the first run and re-read afterwards."""
    publish_catalog(session, catalog_dir)
    load_alliance(session, alliance_file)
    # Every unit signs what it issues: a demo unit without a seal gets a self-signed one.
    for unit in units(session):
        seals.ensure(session, unit.id)
    if session.execute(sa.select(sa.func.count()).select_from(Clerk)).scalar_one() and tokens_file.exists():
        return json.loads(tokens_file.read_text(encoding="utf-8"))
    doc = yaml.safe_load(alliance_file.read_text(encoding="utf-8"))
    tokens = []
    for c in doc.get("clerks", []):
        clerk, token = add_clerk(session, c["name"], c.get("counter"), c["roles"], token_days)
        set_supervised_regions(session, clerk, c.get("regions") or [])
        tokens.append({"name": clerk.name, "counter": clerk.counter_id or "-",
                       "roles": clerk.roles, "token": token})
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(json.dumps(tokens, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(tokens_file, 0o600)
    return tokens
