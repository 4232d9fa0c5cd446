"""办事指南: what an applicant reads before the counter — per item its conditions, the exact
materials for their 情形, fees, legal basis, limits, modes, where to go, FAQ — and the search.

The guide text lives beside the catalog (catalog/guides/<CODE>.yaml); the materials, limits,
modes and 情形 come from the item's latest published version, the counters from the alliance
directory. Public: nothing here is personal.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from core.settings import get_settings
from engine import catalog, situations
from engine.errors import NotFound
from engine.guide_search import Document, Index
from states.loader import DefinitionError, forms_dir, parse_document, read_text
from states.problems import Problem
from states.schema import ItemDefinition
from storage.tables import Counter, CounterItem, Region

log = logging.getLogger(__name__)
MAX_GUIDE_BYTES = 64_000
ROLE_WORDS = {"intake": "收件", "competent": "办理", "guide": "远程指导"}


class Faq(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: str = Field(min_length=1, max_length=200)
    a: str = Field(min_length=1, max_length=1000)


class GuideText(BaseModel):
    """One item's guide text (catalog/guides/<CODE>.yaml)."""

    model_config = ConfigDict(extra="forbid")
    code: str
    summary: str = ""
    aliases: list[str] = []  # colloquial names, synonyms and pinyin initials for the search
    conditions: list[str] = []  # 受理条件
    fees: str = "不收费"
    legal_basis: list[str] = []
    faq: list[Faq] = []


def guides_dir(items_dir: Path | None = None) -> Path:
    """catalog/guides, beside the folder of the item definitions (as catalog/forms is)."""
    return (items_dir or get_settings().catalog_dir).parent / "guides"


@dataclass(frozen=True)
class Guides:
    texts: dict[str, GuideText]  # by item code; a file with a problem is left out
    problems: tuple[Problem, ...]
    stamp: tuple[tuple[str, str], ...]  # (file name, sha256 of its bytes): what the texts were read from
    positions: dict[str, tuple[str, int, int]]  # item code → (file, line, col) of its ``code:``


@lru_cache(maxsize=256)
def _read_guide(path: Path, digest: str) -> tuple[GuideText | None, tuple[Problem, ...], tuple[int, int]]:
    """One guide file as it was when its bytes hashed to ``digest`` (the cache key: an edit is
    read again, whatever its mtime)."""
    try:
        g, located = parse_document(read_text(path), str(path), GuideText, max_bytes=MAX_GUIDE_BYTES, what="办事指南")
    except DefinitionError as err:
        return None, tuple(err.problems), (1, 1)
    pos = located.at(("code",))
    if g.code != path.stem:
        return None, (Problem(str(path), pos.line, pos.col,
                              f"code: 指南文件须以其事项编码命名 ({g.code}.yaml), 每个事项一份"),), (pos.line, pos.col)
    return g, (), (pos.line, pos.col)


def read_guides(directory: Path | None = None) -> Guides:
    """Every guide in the folder, each file on its own: a broken one is reported (and logged by
    the caller), the others are served."""
    d = directory or guides_dir()
    if not d.is_dir():
        return Guides({}, (), (), {})
    texts: dict[str, GuideText] = {}
    problems: list[Problem] = []
    stamp, positions = [], {}
    for p in sorted(d.glob("*.yaml")):
        try:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError as exc:
            problems.append(Problem(str(p), 1, 1, f"无法读取: {exc.strerror}"))
            continue
        stamp.append((p.name, digest))
        g, found, (line, col) = _read_guide(p, digest)
        problems.extend(found)
        if g is not None:
            texts[g.code] = g
            positions[g.code] = (str(p), line, col)
    return Guides(texts, tuple(problems), tuple(stamp), positions)


@lru_cache(maxsize=256)
def _warn_once(problem: str) -> None:
    log.warning("办事指南有误, 这份指南暂不显示 (tongban items check 列出全部问题): %s", problem)


def _loaded() -> Guides:
    guides = read_guides()
    for p in guides.problems:
        _warn_once(p.format())
    return guides


def guide_texts() -> dict[str, GuideText]:
    return _loaded().texts


def check_guides(items: Sequence[tuple[str, Problem]], items_dir: Path, *, complete: bool) -> list[Problem]:
    """``items check`` on the guides beside ``items_dir``: each file's schema problems at their
    line, an item without a guide (``items``: each code with the position of its definition), and
    with ``complete`` (the whole folder checked) a guide whose code names no item."""
    d = guides_dir(items_dir)
    if not d.is_dir():
        return []
    guides = read_guides(d)
    codes = {code for code, _ in items}
    own = {str(d / f"{code}.yaml") for code in codes}
    problems = [p for p in guides.problems if complete or p.file in own]
    for code, at in items:
        if code not in guides.texts and not (d / f"{code}.yaml").is_file():
            problems.append(Problem(at.file, at.line, at.col, f"code: 事项 {code} 没有办事指南 (guides/{code}.yaml)"))
    if complete:
        for code, (file, line, col) in guides.positions.items():
            if code not in codes:
                problems.append(Problem(file, line, col, f"code: 目录中没有事项 {code}, 这份指南无处可用"))
    return problems


def _definitions(session: Session) -> dict[str, ItemDefinition]:
    out = {}
    for it in catalog.list_items(session):
        version = catalog.latest_version(session, it["code"])
        out[it["code"]] = catalog.compiled(session, version.id).definition
    return out


def _counters(session: Session) -> dict[str, list[dict[str, Any]]]:
    rows = session.execute(
        sa.select(CounterItem.item_code, CounterItem.role, Counter.id, Counter.name, Region.name)
        .join(Counter, Counter.id == CounterItem.counter_id)
        .join(Region, Region.code == Counter.region_code)
        .order_by(Counter.region_code, Counter.id)).all()
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    for code, role, cid, name, region in rows:
        entry = by_item.setdefault(code, {}).setdefault(cid, {"name": name, "region": region, "roles": []})
        entry["roles"].append(role)
    out: dict[str, list[dict[str, Any]]] = {}
    for code, counters in by_item.items():
        listed = []
        for c in counters.values():
            takes = bool(set(c["roles"]) & {"intake", "competent"})
            if not takes and "guide" not in c["roles"]:
                continue  # a department's own counter: reached through the intake counter
            listed.append({"name": c["name"], "region": c["region"], "takes_applications": takes,
                           "services": [ROLE_WORDS[r] for r in ("intake", "competent", "guide") if r in c["roles"]]})
        out[code] = listed
    return out


FORM_TYPES = {".pdf": "application/pdf", ".doc": "application/msword", ".xls": "application/vnd.ms-excel",
              ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
              ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def form_url(code: str, name: str | None) -> str | None:
    return f"/guide/{code}/files/{quote(name)}" if name else None


def form_file(session: Session, code: str, name: str) -> tuple[Path, str]:
    """A blank form or sample of the item's latest version, as its materials name it (nothing
    else in the folder is handed out): its path and media type."""
    d = definition(session, code)
    if name not in {f for m in d.materials for f in (m.blank_form, m.sample) if f}:
        raise NotFound("该事项没有这份表格")
    path = forms_dir(get_settings().catalog_dir, d.code) / name
    if not path.is_file():
        raise NotFound("表格文件暂缺, 请到窗口领取")
    return path, FORM_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _files(d: ItemDefinition) -> list[dict[str, Any]]:
    out = []
    for m in d.materials:
        for kind, name in (("blank_form", m.blank_form), ("sample", m.sample)):
            if name:
                out.append({"material_id": m.id, "material": m.name, "kind": kind,
                            "label": "空白表格" if kind == "blank_form" else "填写示例",
                            "name": name, "url": form_url(d.code, name)})
    return out


def _materials(d: ItemDefinition, answers: dict[str, str] | None) -> list[dict[str, Any]]:
    optional = situations.conditional(d)
    chosen = {m.id for m in situations.selected_materials(d, answers)} if answers is not None else None
    forms = {"paper": "纸质", "electronic": "电子", "both": "纸质或电子"}
    out = []
    for m in d.materials:
        if chosen is not None and m.id not in chosen:
            continue
        out.append({"id": m.id, "name": m.name, "required": m.required, "form": forms[m.form], "copies": m.copies,
                    "deferrable": m.deferrable, "from_library": m.library is not None, "library": m.library,
                    "situational": m.id in optional and chosen is None,
                    "blank_form": m.blank_form, "sample": m.sample,
                    "blank_form_url": form_url(d.code, m.blank_form), "sample_url": form_url(d.code, m.sample)})
    return out


def _entry(d: ItemDefinition, g: GuideText | None, counters: list[dict[str, Any]]) -> dict[str, Any]:
    g = g or GuideText(code=d.code)
    return {"code": d.code, "name": d.name, "summary": g.summary, "case_type": d.case_type,
            "legal_days": d.limits.legal_days, "promised_days": d.limits.promised_days,
            "modes": list(d.modes), "certificate": d.certificate_name, "fees": g.fees,
            "conditions": g.conditions, "legal_basis": g.legal_basis,
            "faq": [f.model_dump() for f in g.faq], "aliases": g.aliases,
            "counters": counters, "bundle": any(s.parallel for s in d.states),
            "departments": list(d.roles.values())}


def catalog_guide(session: Session) -> list[dict[str, Any]]:
    texts, counters = guide_texts(), _counters(session)
    return [_entry(d, texts.get(code), counters.get(code, [])) for code, d in _definitions(session).items()]


def definition(session: Session, code: str) -> ItemDefinition:
    """The item's latest published version; NotFound naming it."""
    try:
        version = catalog.latest_version(session, code)
    except NotFound:
        raise NotFound(f"事项 {code} 不存在") from None
    return catalog.compiled(session, version.id).definition


def item_guide(session: Session, code: str, answers: dict[str, str] | None = None) -> dict[str, Any]:
    """One item's guide; with ``answers`` (every 情形 answered) the exact one-time list."""
    d = definition(session, code)
    if answers is not None:
        answers = situations.check_answers(d, answers)
    out = _entry(d, guide_texts().get(d.code), _counters(session).get(d.code, []))
    out["situations"] = [{"id": q.id, "question": q.question,
                          "options": [{"id": o.id, "label": o.label} for o in q.options]} for q in d.situations]
    out["answers"] = situations.describe(d, answers) if answers is not None else None
    out["path"] = situations.selected_path(d, answers) if answers is not None else None
    out["materials"] = _materials(d, answers)
    out["files"] = _files(d)
    return out


def documents(defs: dict[str, ItemDefinition], texts: dict[str, GuideText]) -> list[Document]:
    docs = []
    for code, d in defs.items():
        g = texts.get(code) or GuideText(code=code)
        fields = [(d.name, 3.0), (" ".join(g.aliases), 3.0), (g.summary, 1.0),
                  (" ".join(m.name for m in d.materials), 0.5), (" ".join(g.conditions), 0.3),
                  (" ".join(f.q for f in g.faq), 0.3), (d.certificate_name or "", 1.0)]
        docs.append(Document(code, fields, names=[d.name, *g.aliases]))
    return docs


_indexes: dict[tuple[str, ...], Index] = {}


def search(session: Session, q: str, limit: int = 5) -> list[dict[str, Any]]:
    defs, guides = _definitions(session), _loaded()
    # Keyed on what the index is built from: each item's version and each guide file's bytes
    # (an edited alias is found at once, without a restart).
    key = tuple(sorted(f"{c}:{d.version}" for c, d in defs.items())) + tuple(f"{n}:{h}" for n, h in guides.stamp)
    index = _indexes.get(key)
    if index is None:
        _indexes.clear()
        index = _indexes[key] = Index(documents(defs, guides.texts))
    counters = _counters(session)
    return [{"item_code": code, "name": defs[code].name, "score": score,
             "materials": [m.name for m in defs[code].materials],
             "counters": [c["name"] for c in counters.get(code, []) if c["takes_applications"]]}
            for code, score in index.search(q, limit)]
