"""Publishing item versions and the per-version cache of compiled machines."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine import extensions, offload
from engine.errors import Conflict, NotFound, Unavailable
from states.compiler import CompiledItem, compile_item
from states.loader import MAX_FILE_BYTES, DefinitionError, LoadedItem, load_catalog, load_file, parse_item
from states.problems import Problem
from storage.db import database_key
from storage.tables import ItemVersion


def parse(source: str, path: str = "<text>") -> LoadedItem:
    """Parse and check a definition against the guards, jobs and video steps implemented here.

    Text from outside (the API, the designer page) is parsed in a worker process within
    ``parse_seconds``: pure-Python YAML takes seconds for half a megabyte, and in the server's
    interpreter that would hold every other request. Past the budget: a DefinitionError."""
    if len(source) > MAX_FILE_BYTES:  # characters: at least as many bytes; refused without a worker
        raise DefinitionError([Problem(path, 1, 1, f"文件过大: 超过 {MAX_FILE_BYTES} 字节")])
    budget = get_settings().parse_seconds
    try:
        return offload.COMPUTE.run(parse_item, source, path, vocabulary=extensions.vocabulary(), timeout=budget)
    except offload.Overrun:
        raise DefinitionError([Problem(path, 1, 1, f"解析超过时限 {budget:g} 秒: 定义过大或过于复杂")]) from None
    except offload.WorkerLost as exc:
        raise DefinitionError([Problem(path, 1, 1, f"解析失败: {exc.reason}")]) from None
    except offload.Busy as exc:
        raise Unavailable(exc.reason, retry_after=5) from None


def read_file(path: Path) -> LoadedItem:
    return load_file(path, vocabulary=extensions.vocabulary())


def read_catalog(directory: Path) -> list[LoadedItem]:
    return load_catalog(directory, vocabulary=extensions.vocabulary())


def publish(session: Session, item: LoadedItem, by: str) -> tuple[ItemVersion, bool]:
    """Store a version; identical re-publish is a no-op, changed content under a used number is refused.

    Returns (row, created). Running cases keep the version they started with because a case
    points at its ``item_version_id`` and versions are never rewritten.
    """
    d = item.definition
    existing = session.execute(
        sa.select(ItemVersion).where(ItemVersion.code == d.code, ItemVersion.version == d.version)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.content_hash != item.content_hash:
            raise Conflict(
                f"事项 {d.code} 第 {d.version} 版已发布且内容不同; 修改须发布新版本",
                field="version",
            )
        return existing, False
    row = ItemVersion(code=d.code, version=d.version, name=d.name, content_hash=item.content_hash,
                      source=item.source, published_at=now(), published_by=by)
    session.add(row)
    session.flush()
    return row, True


def latest_version(session: Session, code: str) -> ItemVersion:
    row = session.execute(
        sa.select(ItemVersion).where(ItemVersion.code == code)
        .order_by(ItemVersion.version.desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"事项 {code} 不存在")
    return row


def get_version(session: Session, code: str, version: int | None) -> ItemVersion:
    if version is None:
        return latest_version(session, code)
    row = session.execute(
        sa.select(ItemVersion).where(ItemVersion.code == code, ItemVersion.version == version)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"事项 {code} 没有第 {version} 版")
    return row


def versions(session: Session, code: str | None = None) -> list[ItemVersion]:
    """Published versions, newest first per item (all items, or one)."""
    q = sa.select(ItemVersion).order_by(ItemVersion.code, ItemVersion.version.desc())
    if code is not None:
        q = q.where(ItemVersion.code == code)
    return list(session.execute(q).scalars())


def content_hash(session: Session, item_version_id: int) -> str:
    row = session.get(ItemVersion, item_version_id)
    if row is None:
        raise NotFound(f"事项版本 {item_version_id} 不存在")
    return row.content_hash


def list_items(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(ItemVersion.code, ItemVersion.name, sa.func.max(ItemVersion.version))
        .group_by(ItemVersion.code, ItemVersion.name).order_by(ItemVersion.code)
    ).all()
    return [{"code": c, "name": n, "latest_version": v} for c, n, v in rows]


@lru_cache(maxsize=1024)
def _compile_source(content_hash: str, source: str) -> CompiledItem:
    # A stored version passed the checks of its day: rules added since must not stop its cases.
    item = parse_item(source, f"<{content_hash[:12]}>", vocabulary=extensions.vocabulary(), strict=False)
    return compile_item(item.definition)


_by_id: dict[tuple[str, int], CompiledItem] = {}


def forget_compiled() -> None:
    """Drop the per-id cache: for a database re-created under the same URL (tests), whose ids
    start again at 1."""
    _by_id.clear()


def compiled(session: Session, item_version_id: int) -> CompiledItem:
    """One compiled machine per version, process-wide; versions are immutable so never stale."""
    key = (database_key(session), item_version_id)
    hit = _by_id.get(key)
    if hit is None:
        row = session.get(ItemVersion, item_version_id)
        if row is None:
            raise NotFound(f"事项版本 {item_version_id} 不存在")
        hit = _by_id[key] = _compile_source(row.content_hash, row.source)
    return hit
