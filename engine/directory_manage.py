"""The alliance directory as managed data (联盟目录): checked, imported, versioned, diffed.

A directory document (catalog/alliance.yaml is one) lists regions, member units, counters with
their kind and item list, and clerks with their roles. ``check`` reports every problem as
``file:line:col: reason``; ``import_directory`` applies a document in one transaction and
records it as a numbered, content-hashed version (an unchanged document records nothing).
Imports are serialized (a PostgreSQL advisory lock; SQLite has one writer), and a clerk entry
(name at counter) maps to exactly one clerk, so any number of nodes importing the same
document at once yield one set of clerks. Nothing is deleted but a counter's item roles: cases
keep pointing at the regions, units and counters they were routed to. What a document no longer
lists is retired: a counter dropped from it loses its item roles (so no case is routed to it), a
clerk dropped from it is deactivated and its tokens revoked; listed again, the same clerk is
active again with a fresh token.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from engine import counter_service, idcodes
from engine.actors import ACCOUNT_ROLES, add_clerk, issue_token, revoke_tokens
from engine.dashboard import set_supervised_regions
from engine.errors import Conflict, InvalidInput, NotFound
from states.problems import Problem
from states.vocabulary import ACTOR_ROLES
from states.yamlpos import Located, load_mapping
from storage.directory_tables import COUNTER_KINDS, CounterKind, DirectoryClerk, DirectoryVersion
from storage.tables import Clerk, Counter, CounterItem, Region, Unit

MAX_DIRECTORY_BYTES = 8_000_000  # the national alliance: ~600 units, their counters and clerks
# The item definitions' node budget (20,000) refused the alliance at about 280 counters: its ~600
# counters with ten items each (bench/national_directory.py) are ~42,000 nodes, with the national
# list of 跨省通办 items (~150 each) ~400,000. It still bounds what aliases can expand to.
MAX_DIRECTORY_NODES = 1_000_000
LOCK_KEY = 0x70B4D1  # pg_advisory_xact_lock: one directory import at a time across nodes
DEFAULT_FORMAT = "{abbr}{word}〔{year}〕{seq:05d}号"
_REGION = re.compile(r"^\d{6}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ROLE = re.compile(r"^[a-z][a-z_]{0,31}$")
SECTIONS = ("regions", "document_numbers", "units", "counters", "clerks")


class DirectoryError(InvalidInput):
    """A directory document with problems: each one names its file, line and column."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("directory", "; ".join(p.format() for p in problems[:20]))


@dataclass
class Checked:
    document: dict[str, Any]
    content_hash: str
    path: str


@dataclass
class Imported:
    version: int
    content_hash: str
    changed: bool
    changes: list[str] = field(default_factory=list)
    tokens: list[dict[str, str]] = field(default_factory=list)  # clerks created (or listed again) by this import


def canonical_hash(document: dict[str, Any]) -> str:
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def check_text(text: str, path: str = "<text>") -> Checked:
    """Parse and check a directory document; every problem at once, as file:line:col."""
    problems: list[Problem] = []
    loc = load_mapping(text, path, max_bytes=MAX_DIRECTORY_BYTES, top="regions, units, counters, clerks",
                       error=DirectoryError, max_nodes=MAX_DIRECTORY_NODES)
    data = loc.data

    def bad(at: tuple[str | int, ...], message: str) -> None:
        p = loc.at(at)
        problems.append(Problem(path, p.line, p.col, message))

    for key in data:
        if key not in SECTIONS:
            bad((key,), f"未知的段落 '{key}' (可用: {', '.join(SECTIONS)})")
    doc = _check_sections(loc, data, bad)
    if problems:
        raise DirectoryError(problems)
    return Checked(doc, canonical_hash(doc), path)


def _records(loc: Located | None, data: dict[str, Any], name: str, bad: Any) -> list[tuple[int, dict[str, Any]]]:
    rows = data.get(name) or []
    if not isinstance(rows, list):
        bad((name,), f"{name} 必须是列表")
        return []
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            bad((name, i), f"{name}[{i}] 必须是映射")
            continue
        out.append((i, r))
    return out


def _need(r: dict[str, Any], at: tuple[str | int, ...], keys: tuple[str, ...], bad: Any) -> bool:
    missing = [k for k in keys if r.get(k) in (None, "")]
    if missing:
        bad(at, f"缺少必填字段: {', '.join(missing)}")
    return not missing


def _check_sections(loc: Located | None, data: dict[str, Any], bad: Any) -> dict[str, Any]:
    regions: dict[str, dict[str, str]] = {}
    for i, r in _records(loc, data, "regions", bad):
        if not _need(r, ("regions", i), ("code", "name"), bad):
            continue
        code = _text(r["code"])
        if not _REGION.match(code):
            bad(("regions", i, "code"), f"行政区划代码应为 6 位数字: {code}")
        elif code in regions:
            bad(("regions", i, "code"), f"行政区划 {code} 重复")
        regions[code] = {"code": code, "name": _text(r["name"])}
    scheme = data.get("document_numbers") or {}
    if not isinstance(scheme, dict):
        bad(("document_numbers",), "document_numbers 必须是映射 (format, words)")
        scheme = {}
    units: dict[str, dict[str, Any]] = {}
    for i, u in _records(loc, data, "units", bad):
        if not _need(u, ("units", i), ("id", "name", "code", "region", "abbr"), bad):
            continue
        uid, region = _text(u["id"]), _text(u["region"])
        if not _ID.match(uid):
            bad(("units", i, "id"), f"成员单位编号只能用字母、数字、-_. (最长 64): {uid}")
        elif len(uid) > 32:
            bad(("units", i, "id"), f"成员单位编号最长 32 个字符: {uid}")
        if uid in units:
            bad(("units", i, "id"), f"成员单位 {uid} 重复")
        if any(other["code"] == _text(u["code"]) for other in units.values()):
            bad(("units", i, "code"), f"统一社会信用代码 {u['code']} 与另一成员单位重复")
        if problem := idcodes.credit_code_problem(_text(u["code"])):
            bad(("units", i, "code"), f"成员单位「{u['name']}」: {problem}")
        if region not in regions:
            bad(("units", i, "region"), f"未列出的行政区划 {region}")
        fmt = _text(u.get("format") or scheme.get("format") or DEFAULT_FORMAT)
        if len(fmt) > 64 or len(_text(u["abbr"])) > 16:
            bad(("units", i, "format" if len(fmt) > 64 else "abbr"), "文号格式最长 64 个字符, 机关代字最长 16 个字符")
        units[uid] = {"id": uid, "name": _text(u["name"]), "code": _text(u["code"]), "region": region,
                      "abbr": _text(u["abbr"]),
                      "format": fmt,
                      "words": {**(scheme.get("words") or {}), **(u.get("words") or {})}}
    counters: dict[str, dict[str, Any]] = {}
    supervised: list[tuple[int, str]] = []
    for i, c in _records(loc, data, "counters", bad):
        if not _need(c, ("counters", i), ("id", "name", "region"), bad):
            continue
        cid, region, kind = _text(c["id"]), _text(c["region"]), _text(c.get("kind") or "staffed")
        if not _ID.match(cid):
            bad(("counters", i, "id"), f"窗口编号只能用字母、数字、-_. (最长 64): {cid}")
        if cid in counters:
            bad(("counters", i, "id"), f"窗口 {cid} 重复")
        if region not in regions:
            bad(("counters", i, "region"), f"未列出的行政区划 {region}")
        if kind not in COUNTER_KINDS:
            bad(("counters", i, "kind"), f"未知的窗口类型 '{kind}' (可用: {', '.join(COUNTER_KINDS)})")
        unit = _text(c.get("unit"))
        if unit and unit in units and units[unit]["region"] != region:
            bad(("counters", i, "unit"), f"窗口与其成员单位 {unit} 不在同一行政区划")
        items: dict[str, list[str]] = {}
        raw = c.get("items") or {}
        if not isinstance(raw, dict):
            bad(("counters", i, "items"), "items 必须是映射: 事项编码 → 职责列表")
            raw = {}
        for code, roles in raw.items():
            at = ("counters", i, "items", code)
            if not isinstance(roles, list) or not roles:
                bad(at, f"事项 {code} 的职责必须是非空列表 (intake, competent, guide 或部门职责)")
                continue
            wrong = [str(r) for r in roles if not _ROLE.match(str(r))]
            if wrong:
                bad(at, f"事项 {code} 的职责名称无效: {', '.join(wrong)}")
            if "guide" in roles and {"intake", "competent"} & set(roles):
                bad(at, f"事项 {code}: 仅远程指导 (guide) 不能与收件或办理同时出现")
            if kind == "guide_only" and {"intake", "competent"} & set(roles):
                bad(at, f"仅远程指导窗口不能对事项 {code} 收件或办理")
            items[str(code)] = sorted({str(r) for r in roles})
        if kind == "self_service" and any(set(r) - {"intake"} for r in items.values()):
            bad(("counters", i, "items"), "自助服务终端只能收件 (intake)")
        counters[cid] = {"id": cid, "name": _text(c["name"]), "unit": unit, "region": region,
                         "kind": kind, "items": items, **counter_service.check_entry(c, items, ("counters", i), bad)}
        if c.get("supervised_by") is not None:  # a booth's staffed counter, checked once all are read
            counters[cid]["supervised_by"] = _text(c["supervised_by"])
            supervised.append((i, cid))
    for i, cid in supervised:
        boss = counters.get(counters[cid]["supervised_by"])
        if counters[cid]["kind"] != "self_service":
            bad(("counters", i, "supervised_by"), "只有自助服务终端 (self_service) 才有值守窗口")
        elif boss is None or boss["kind"] != "staffed":
            bad(("counters", i, "supervised_by"),
                f"值守窗口须是目录中的有人值守窗口: {counters[cid]['supervised_by']}")
    assignable = (set(ACTOR_ROLES) | set(ACCOUNT_ROLES)) - {"system", "applicant"}
    clerks: dict[str, dict[str, Any]] = {}
    for i, k in _records(loc, data, "clerks", bad):
        if not _need(k, ("clerks", i), ("name", "roles"), bad):
            continue
        counter = _text(k.get("counter"))
        roles = k["roles"] if isinstance(k["roles"], list) else [k["roles"]]
        if unknown := [str(r) for r in roles if str(r) not in assignable]:
            bad(("clerks", i, "roles"), f"未知或不可分配的角色: {', '.join(unknown)}")
        if counter and counter not in counters:
            bad(("clerks", i, "counter"), f"未列出的窗口 {counter}")
        watch = [_text(r) for r in (k.get("regions") or [])]
        if missing := [r for r in watch if r not in regions]:
            bad(("clerks", i, "regions"), f"未列出的行政区划 {', '.join(missing)}")
        if watch and "supervisor" not in roles:
            bad(("clerks", i, "regions"), "只有督查人员 (supervisor) 才有督查区域")
        key = f"{k['name']}@{counter}"
        if key in clerks:
            bad(("clerks", i, "name"), f"窗口 {counter or '(无)'} 的工作人员 {k['name']} 重复")
        clerks[key] = {"name": _text(k["name"]), "counter": counter or None,
                       "roles": [str(r) for r in roles], "regions": watch}
    return {"regions": list(regions.values()), "units": list(units.values()),
            "counters": list(counters.values()), "clerks": list(clerks.values())}


def check_file(path: Path) -> Checked:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DirectoryError([Problem(str(path), 1, 1, f"读不到文件: {exc}")]) from None
    return check_text(text, str(path))


def latest(session: Session) -> DirectoryVersion | None:
    return session.execute(
        sa.select(DirectoryVersion).order_by(DirectoryVersion.version.desc()).limit(1)).scalar_one_or_none()


def get_version(session: Session, version: int | None) -> DirectoryVersion | None:
    return latest(session) if version is None else session.get(DirectoryVersion, version)


def versions(session: Session) -> list[DirectoryVersion]:
    return list(session.execute(sa.select(DirectoryVersion).order_by(DirectoryVersion.version)).scalars())


def lock(session: Session) -> None:
    """Serialize directory imports (and the demo seed) across nodes until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def import_directory(session: Session, checked: Checked, by: str, *, token_days: int = 30) -> Imported:
    """Apply a checked document; record it as a new version unless it is the current one."""
    lock(session)
    current = latest(session)
    if current is not None and current.content_hash == checked.content_hash:
        return Imported(current.version, current.content_hash, False)
    doc = checked.document
    changes = diff(current.document if current else empty(), doc)
    for r in doc["regions"]:
        session.merge(Region(code=r["code"], name=r["name"]))
    session.flush()
    for u in doc["units"]:
        session.merge(Unit(id=u["id"], name=u["name"], code=u["code"], region_code=u["region"],
                           doc_abbr=u["abbr"], doc_format=u["format"], doc_words=u["words"]))
    session.flush()
    for c in doc["counters"]:
        unit = session.get(Unit, c["unit"]) if c["unit"] else None
        session.merge(Counter(id=c["id"], name=c["name"], unit=unit.name if unit else c["unit"],
                              unit_id=unit.id if unit else None, region_code=c["region"]))
        session.merge(CounterKind(counter_id=c["id"], kind=c["kind"], supervised_by=c.get("supervised_by")))
        session.flush()
        wanted = {(code, role) for code, roles in c["items"].items() for role in roles}
        have = {(r[0], r[1]) for r in session.execute(sa.select(CounterItem.item_code, CounterItem.role)
                                                      .where(CounterItem.counter_id == c["id"]))}
        for code, role in have - wanted:
            session.execute(sa.delete(CounterItem).where(
                CounterItem.counter_id == c["id"], CounterItem.item_code == code, CounterItem.role == role))
        for code, role in sorted(wanted - have):
            session.add(CounterItem(counter_id=c["id"], item_code=code, role=role))
        session.flush()
        counter_service.replace(session, c["id"], c)
    session.flush()
    tokens = []
    for k in doc["clerks"]:
        entry = session.get(DirectoryClerk, (k["name"], k["counter"] or ""))
        clerk = session.get(Clerk, entry.clerk_id) if entry else None
        if clerk is None:
            clerk, token = add_clerk(session, k["name"], k["counter"], k["roles"], token_days)
            session.add(DirectoryClerk(name=k["name"], counter_key=k["counter"] or "", clerk_id=clerk.id))
            tokens.append({"name": clerk.name, "counter": clerk.counter_id or "-", "roles": clerk.roles,
                           "token": token})
        else:
            if not clerk.active:  # retired by an earlier version: its tokens were revoked then
                tokens.append({"name": clerk.name, "counter": clerk.counter_id or "-", "roles": ",".join(k["roles"]),
                               "token": issue_token(session, clerk, token_days)})
            clerk.roles, clerk.active = ",".join(k["roles"]), True
        set_supervised_regions(session, clerk, k["regions"], exactly=True)
    session.flush()
    _retire(session, current.document if current else empty(), doc)
    number = (current.version if current else 0) + 1
    session.add(DirectoryVersion(version=number, content_hash=checked.content_hash, document=doc,
                                 source=checked.path[-500:], imported_by=by[:100], imported_at=now()))
    session.flush()
    return Imported(number, checked.content_hash, True, changes, tokens)


def _retire(session: Session, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Counters and clerks the old document listed and the new one does not: a counter keeps its
    row (cases point at it) but loses every item role and ticket rule, so routing never picks it; a clerk the
    directory created is deactivated and its tokens revoked."""
    kept = {c["id"] for c in new["counters"]}
    gone = [c["id"] for c in old.get("counters", []) if c["id"] not in kept]
    if gone:
        session.execute(sa.delete(CounterItem).where(CounterItem.counter_id.in_(gone)))
        for cid in gone:  # nor does its ticket machine give numbers any more
            counter_service.replace(session, cid, {})
    listed = {(k["name"], k["counter"] or "") for k in new["clerks"]}
    for entry in session.execute(sa.select(DirectoryClerk)).scalars().all():
        if (entry.name, entry.counter_key) in listed:
            continue
        clerk = session.get(Clerk, entry.clerk_id)
        if clerk is not None and clerk.active:
            clerk.active = False
            revoke_tokens(session, clerk.id)
    session.flush()


def issue_tokens(session: Session, document: dict[str, Any], token_days: int) -> list[dict[str, str]]:
    """A fresh token for each clerk the document lists (the clerks themselves are not touched)."""
    out = []
    for k in document["clerks"]:
        entry = session.get(DirectoryClerk, (k["name"], k["counter"] or ""))
        clerk = session.get(Clerk, entry.clerk_id) if entry else None
        if clerk is not None:
            out.append({"name": clerk.name, "counter": clerk.counter_id or "-", "roles": clerk.roles,
                        "token": issue_token(session, clerk, token_days)})
    session.flush()
    return out


def directory_clerk(session: Session, name: str, counter: str | None) -> Clerk | None:
    entry = session.get(DirectoryClerk, (name, counter or ""))
    return session.get(Clerk, entry.clerk_id) if entry else None


def empty() -> dict[str, Any]:
    return {"regions": [], "units": [], "counters": [], "clerks": []}


RULE_LABELS = {"hours": "取号时间", "capacity": "每日号源"}


def _flat(doc: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in doc.get("regions", []):
        out[f"地区 {r['code']}"] = r["name"]
    for u in doc.get("units", []):
        out[f"成员单位 {u['id']}"] = (f"{u['name']} {u['code']} {u['region']} 简称 {u['abbr']} "
                                   f"文号 {u['format']}")
    for c in doc.get("counters", []):
        watched = f" 值守 {c['supervised_by']}" if c.get("supervised_by") else ""
        kind = COUNTER_KINDS.get(c["kind"], c["kind"])
        out[f"窗口 {c['id']}"] = f"{c['name']} ({kind}) {c['region']} {c['unit']}{watched}"
        for code, roles in c["items"].items():
            out[f"窗口 {c['id']} 事项 {code}"] = ",".join(roles)
        for key, label in RULE_LABELS.items():  # the ticket machine's rules (engine.counter_service)
            if c.get(key) is not None:
                out[f"窗口 {c['id']} {label}"] = str(c[key])
        for letter, name in (c.get("groups") or {}).items():
            out[f"窗口 {c['id']} 取号分组 {letter}"] = name
        for code, rule in (c.get("service") or {}).items():
            out[f"窗口 {c['id']} 事项 {code} 取号规则"] = " ".join(
                f"{RULE_LABELS.get(k, '分组')} {v}" for k, v in sorted(rule.items()))
    for k in doc.get("clerks", []):
        where = f" 督查 {','.join(k['regions'])}" if k["regions"] else ""
        out[f"工作人员 {k['name']}@{k['counter'] or '-'}"] = ",".join(k["roles"]) + where
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Line per change: ``+ key: value``, ``- key: value``, ``~ key: old → new``."""
    a, b = _flat(old), _flat(new)
    out = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            out.append(f"+ {key}: {b[key]}")
        elif key not in b:
            out.append(f"- {key}: {a[key]}")
        elif a[key] != b[key]:
            out.append(f"~ {key}: {a[key]} → {b[key]}")
    return out


def summary(doc: dict[str, Any]) -> dict[str, int]:
    return {name: len(doc.get(name, [])) for name in ("regions", "units", "counters", "clerks")}


def counter_kind(session: Session, counter_id: str) -> str:
    row = session.get(CounterKind, counter_id)
    return row.kind if row else "staffed"


def supervising_counter(session: Session, counter_id: str) -> str | None:
    """The staffed counter a self-service booth's cases are taken in at, or None."""
    row = session.get(CounterKind, counter_id)
    return row.supervised_by if row and row.kind == "self_service" else None


def region_codes(session: Session) -> list[str]:
    return list(session.execute(sa.select(Region.code).order_by(Region.code)).scalars())


# --- editing through the admin API: every change a new version, as an import is -------------

SECTION_OF = {"region": "regions", "unit": "units", "counter": "counters", "clerk": "clerks"}


def _key(section: str, record: dict[str, Any]) -> str:
    if section == "regions":
        return str(record["code"])
    if section == "clerks":
        return f"{record['name']}@{record.get('counter') or ''}"
    return str(record["id"])


def check_document(doc: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[tuple[str | int, ...], str]]]:
    """Check a document given as data (the admin API's edits): the normalized document and every
    problem with the path of the field it is about."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    normalized = _check_sections(None, doc, lambda at, message: problems.append((tuple(at), message)))
    return normalized, problems


def edit(session: Session, by: str, section: str, record: dict[str, Any]) -> Imported:
    """Add or replace one record of the current directory (a region, unit, counter or clerk, by its
    key) and import the result as the next version. Problems are 422s naming the record's field;
    nothing is written then."""
    lock(session)
    current = latest(session)
    doc = {name: [dict(r) for r in (current.document if current else empty()).get(name, [])]
           for name in ("regions", "units", "counters", "clerks")}
    rows = doc[section]
    key = _key(section, record)
    at = next((i for i, r in enumerate(rows) if _key(section, r) == key), None)
    if at is None:
        rows.append(record)
        at = len(rows) - 1
    else:
        rows[at] = record
    normalized, problems = check_document(doc)
    if problems:
        mine = [(path[2:], message) for path, message in problems if path[:2] == (section, at)]
        errors = [{"field": ".".join(str(p) for p in path) or section, "reason": message}
                  for path, message in mine] or [
            {"field": section, "reason": message} for _, message in problems]
        err = InvalidInput(errors[0]["field"], errors[0]["reason"])
        err.extra["errors"] = errors
        err.detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        raise err
    return import_directory(session, Checked(normalized, canonical_hash(normalized), "api"), by)


def remove(session: Session, by: str, section: str, key: str) -> Imported:
    """Drop one counter or clerk from the current directory and import the result as the next
    version: the counter loses its item roles, the clerk is deactivated and its tokens revoked
    (``_retire``). A counter that clerks or self-service booths still name is refused (409) with
    their names; nothing is written then."""
    lock(session)
    current = latest(session)
    doc = {name: [dict(r) for r in (current.document if current else empty()).get(name, [])]
           for name in ("regions", "units", "counters", "clerks")}
    if not any(_key(section, r) == key for r in doc[section]):
        raise NotFound(f"目录中没有{_NOUN[section]} {key}")
    doc[section] = [r for r in doc[section] if _key(section, r) != key]
    if section == "counters":
        clerks = [k["name"] for k in doc["clerks"] if k.get("counter") == key]
        booths = [c["id"] for c in doc["counters"] if c.get("supervised_by") == key]
        if clerks or booths:
            named = "、".join([f"工作人员 {n}" for n in clerks] + [f"自助终端 {b}" for b in booths])
            raise Conflict(f"窗口 {key} 仍被使用: {named}; 请先移除或调整它们", clerks=clerks, counters=booths)
    normalized, problems = check_document(doc)
    if problems:  # a valid directory minus a counter no one names stays valid; kept as a guard
        raise InvalidInput(section, "; ".join(message for _, message in problems))
    return import_directory(session, Checked(normalized, canonical_hash(normalized), "api"), by)


_NOUN = {"regions": "行政区划", "units": "成员单位", "counters": "窗口", "clerks": "工作人员"}


def record_of(session: Session, section: str, key: str) -> dict[str, Any] | None:
    """One record of the current directory by its key (a region's code, a unit's or counter's id,
    a clerk's ``name@counter``)."""
    current = latest(session)
    rows = (current.document if current else empty()).get(section, [])
    return next((dict(r) for r in rows if _key(section, r) == key), None)
