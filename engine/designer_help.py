"""What the designer page adds to a check: "did you mean" beside a name the checker does not
know, the difference from the published version, and how many cases run on each version."""

from __future__ import annotations

import difflib
import re
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine import catalog, extensions
from engine.errors import NotFound
from states.vocabulary import ACTOR_ROLES
from states.yamlpos import YamlError, load_located
from storage.tables import T_CASE, ItemVersion

# A problem names what it does not know in quotes: 未知的状态 'acepted', 未知的守卫条件 'fee_payed' …
_UNKNOWN = re.compile(r"'([A-Za-z_][A-Za-z0-9_\-]*)'")
_IDS = re.compile(r"(?:\bid|\btrigger)\s*:\s*([A-Za-z_][A-Za-z0-9_]*)")


def names_in(source: str) -> set[str]:
    """The ids and triggers the text declares, and every name the registries and roles offer."""
    v = extensions.vocabulary()
    return (set(_IDS.findall(source)) | set(v.guards) | set(v.jobs) | set(v.video_kinds)
            | set(ACTOR_ROLES) | {"intake", "competent"})


def did_you_mean(message: str, known: set[str]) -> str | None:
    """The closest known name to the unknown one a problem quotes, if one is close."""
    for name in _UNKNOWN.findall(message):
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        if close:
            return close[0]
    return None


def diff_lines(old: str, new: str) -> list[dict[str, Any]]:
    """The published text against the pasted one, line by line: ``{"op": " "|"+"|"-"|"@", "text"}``."""
    out = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), "已发布", "本次", n=2, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        out.append({"op": line[:1] if line[:1] in "+- " else "@", "text": line[1:] if line[:1] in "+- " else line})
    return out


def published_source(session: Session, code: str) -> tuple[int, str] | None:
    """The newest published version of ``code`` and its text, or None for a new item."""
    try:
        row = catalog.latest_version(session, code)
    except NotFound:  # an item not published yet
        return None
    return row.version, row.source


def running_by_version(session: Session, code: str | None = None) -> dict[tuple[str, int], int]:
    """(item code, version) → cases still open on it: what a new version leaves running as it was."""
    q = (sa.select(ItemVersion.code, ItemVersion.version, sa.func.count(T_CASE.c.id))
         .join(T_CASE, T_CASE.c.item_version_id == ItemVersion.id)
         .where(T_CASE.c.finished_at.is_(None)).group_by(ItemVersion.code, ItemVersion.version))
    if code is not None:
        q = q.where(ItemVersion.code == code)
    return {(c, v): n for c, v, n in session.execute(q).all()}


REFERENCE_PASS_MAX = 50_000  # characters: parsed in this process (catalog.parse uses a worker)


def reference_problems(source: str) -> list[tuple[int, int, str]]:
    """Names a definition uses but does not declare (states in from/to, guards, jobs), found in
    the raw text even where the schema refuses the definition — the checker would only report
    them once the schema problems are fixed, so the designer sees both kinds in one round."""
    if len(source) > REFERENCE_PASS_MAX:
        return []
    try:
        located = load_located(source)
    except YamlError:
        return []
    data = located.data if isinstance(located.data, dict) else {}
    states = data.get("states") if isinstance(data.get("states"), list) else []
    transitions = data.get("transitions") if isinstance(data.get("transitions"), list) else []
    ids = {s.get("id") for s in states if isinstance(s, dict)}
    v = extensions.vocabulary()
    out = []

    def report(path: tuple[str | int, ...], message: str) -> None:
        pos = located.at(path)
        out.append((pos.line, pos.col, message))

    for i, t in enumerate(transitions):
        if not isinstance(t, dict):
            continue
        sources = t.get("from") if isinstance(t.get("from"), list) else [t.get("from")]
        for k, name in enumerate(sources):
            if isinstance(name, str) and name not in ids:
                report(("transitions", i, "from", k) if isinstance(t.get("from"), list) else ("transitions", i, "from"),
                       f"未知的状态 '{name}'")
        if isinstance(t.get("to"), str) and t["to"] not in ids:
            report(("transitions", i, "to"), f"未知的状态 '{t['to']}'")
        for key, known, what in (("guards", v.guards, "守卫条件"), ("jobs", v.jobs, "自动任务")):
            for k, name in enumerate(t.get(key) if isinstance(t.get(key), list) else []):
                if isinstance(name, str) and name not in known:
                    report(("transitions", i, key, k), f"未知的{what} '{name}'")
    return out
