"""The embedded demo: publish the catalog, load the alliance, give each unit a seal, and create demo clerks once."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlmodel import Session

from engine import seals
from engine.catalog import publish, read_catalog
from engine.directory import units
from engine.directory_manage import check_file, import_directory, issue_tokens, latest, lock

DEMO = "demo"  # who the seed's directory versions are imported by


def publish_catalog(session: Session, directory: Path, by: str = "catalog") -> list[tuple[str, int, bool]]:
    out = []
    for item in read_catalog(directory):
        row, created = publish(session, item, by)
        out.append((row.code, row.version, created))
    return out


def seed(session: Session, catalog_dir: Path, alliance_file: Path, tokens_file: Path,
         token_days: int) -> list[dict[str, str]]:
    """Idempotent on any number of nodes: the alliance is one directory import (serialized, and an
    unchanged document changes nothing), so its clerks exist once. The node that created them keeps
    their tokens in ``tokens_file``; another node issues its own tokens for the same clerks. It
    imports the alliance only while no directory exists or the current version is the demo's own:
    a real directory stays as it is, and the seed then returns no tokens."""
    lock(session)  # two nodes starting at once: the second waits, then finds everything in place
    publish_catalog(session, catalog_dir)
    current = latest(session)
    if current is not None and current.imported_by != DEMO:
        # A real directory is in place (imported by an operator or edited through the admin API):
        # the demo never replaces it, nor brings back the clerks and counters it retired.
        return []
    result = import_directory(session, check_file(alliance_file), DEMO, token_days=token_days)
    # Every unit signs what it issues: a demo unit without a seal gets a self-signed one.
    for unit in units(session):
        seals.ensure(session, unit.id)
    kept = list(json.loads(tokens_file.read_text(encoding="utf-8"))) if tokens_file.exists() else []
    if kept and not result.tokens:
        return kept
    if result.tokens:
        tokens = kept + result.tokens  # an appended clerk joins the ones this node already holds
    else:
        current = latest(session)
        tokens = issue_tokens(session, current.document, token_days) if current else []
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(json.dumps(tokens, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(tokens_file, 0o600)
    return tokens
