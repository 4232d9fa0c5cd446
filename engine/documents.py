"""Written notices (文书): which ones a step issues, their numbers, and the record each leaves.

行政许可法 asks for a written, sealed and dated notice at fixed points of a case. Each kind is
declared once in ``engine.document_kinds`` (``DOCUMENTS``) with the step that issues it, derived
from the item's graph (受理 leaves the intake phase, 补正 enters a status-6 state, a pausing state
is a 特别程序, …); an item may name the triggers itself or turn a kind off (``documents:``).

A notice is issued inside the transaction of the step that causes it: the unit's number (文号,
``engine.docnumbers``) and the facts the notice states are written there, so a step that rolls
back consumes no number and leaves no notice. The PDF is drawn afterwards by the
``render_document`` job (``flows.documents``) and stored as evidence; a reprint serves those
stored bytes under the same number.

A kind may wait to be drawn (``drawn=LEAVING_INTAKE``): the 收件凭证 is numbered at 收件 but lists
the pages scanned after it, so it is drawn when the case leaves the intake phase, or earlier when
the clerk asks to print it (``request_drawing``); its ``refresh`` gives the facts read at drawing.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from core import clock
from core.install_secrets import install_key
from core.settings import get_settings
from engine import docnumbers, extensions
from engine.actors import Actor
from engine.extensions import DOCUMENTS
from engine.statements import INSERT_DOCUMENT, SELECT_ISSUER, SELECT_PENDING_JOBS, SELECT_UNDRAWN_DOCUMENTS
from states.compiler import CompiledItem
from states.schema import DocumentRule, ItemDefinition
from storage.documents import T_EVID
from storage.flow_tables import T_CERT
from storage.notice_tables import T_DOC
from storage.rows import CaseRow, NewHistoryEvent

INTAKE, TRANSITION, EXTENSION = "intake", "transition", "extension"
ON_ISSUE, LEAVING_INTAKE = "on_issue", "leaving_intake"  # when a kind's PDF is drawn


@dataclass(frozen=True)
class Step:
    """The event a notice may be issued at, with what a kind's rule and facts read."""

    session: Session
    item: CompiledItem
    case: CaseRow
    event: NewHistoryEvent  # the event it is issued at (kind, seq, at, trigger, from_state, to_state, data …)
    actor: Actor
    extra: dict[str, Any]  # what only the caller knows (the query code at 收件)

    @property
    def before(self) -> str | None:
        return self.event.get("from_state")

    @property
    def after(self) -> str | None:
        return self.event.get("to_state")

    def top(self, name: str | None) -> str | None:
        """The top-level state of a qualified name (a branch state's enclosing parallel state)."""
        if name is None:
            return None
        ref = self.item.table[name]
        return ref.parallel or name

    def state(self, name: str | None) -> Any:
        return self.item.table[name].state if name is not None else None

    def status(self, name: str | None) -> int | None:
        s = self.state(name)
        if s is None:
            return None
        return s.status or (9 if s.clock == "pause" else None)


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    event: str  # the history event kind it is issued at
    issuer: str  # whose unit issues it: intake | competent | holder (the counter that acted)
    when: Callable[[Step], bool]
    facts: Callable[[Step], dict[str, Any]]
    drawn: str = ON_ISSUE
    # The facts read again when the PDF is drawn (session, case id, item, recorded facts → changes).
    refresh: Callable[[Session, int, CompiledItem, dict[str, Any]], dict[str, Any]] | None = None


def kinds() -> list[Kind]:
    extensions.load()
    return [Kind(e.name, e.meta["title"], e.meta["event"], e.meta["issuer"], e.meta["when"], e.impl,
                 e.meta.get("drawn", ON_ISSUE), e.meta.get("refresh")) for e in DOCUMENTS]


def kind_of(name: str) -> Kind | None:
    return next((k for k in kinds() if k.name == name), None)


def title_of(kind: str) -> str:
    extensions.load()
    entry = DOCUMENTS.get(kind)
    return entry.meta["title"] if entry is not None else kind


def title_for(d: ItemDefinition, kind: str) -> str:
    """The title of an item's ``kind`` notice, as it is issued (the item's word, its decision's, the kind's)."""
    return d.document_title(kind, title_of(kind))


def _applies(k: Kind, rule: DocumentRule | None, step: Step) -> bool:
    if step.event.get("kind") != k.event:
        return False
    if rule is not None and not rule.enabled:
        return False
    if rule is not None and rule.at is not None:
        return step.event.get("trigger") in rule.at
    return k.when(step)


def _issuing_counter(k: Kind, step: Step) -> str | None:
    if k.issuer == "intake":
        return step.case["intake_counter_id"]
    if k.issuer == "competent":
        return step.case["competent_counter_id"]
    return step.event.get("counter_id") or step.case["competent_counter_id"]


@dataclass(frozen=True)
class Issued:
    id: int
    kind: str
    number: str
    counter_id: str
    drawn: str = ON_ISSUE


def issue_at(session: Session, item: CompiledItem, case: CaseRow, events: list[NewHistoryEvent], actor: Actor,
             **extra: Any) -> list[Issued]:
    """Issue every notice these events call for, in the caller's transaction; return them so the
    caller can queue their rendering. ``events`` are the history events just written."""
    out = []
    rules = item.definition.documents
    all_kinds = kinds()
    for event in events:
        step = Step(session, item, case, event, actor, extra)
        for k in all_kinds:
            if _applies(k, rules.get(k.name), step):  # type: ignore[call-overload]
                issued = issue(session, k, step)
                if issued is not None:
                    out.append(issued)
    return out


@dataclass(frozen=True)
class Issuer:
    """The counter that issues a notice, with its member unit's name, code and 文号 scheme."""

    counter_id: str
    counter_name: str
    id: str  # the unit's (docnumbers.Scheme)
    name: str
    code: str
    doc_abbr: str
    doc_format: str
    doc_words: dict[str, str]
    region_name: str


def issuer(session: Session, counter_id: str) -> Issuer | None:
    """None where the counter belongs to no member unit. Read afresh in each transaction: the
    directory may change a unit's scheme at any time."""
    row = SELECT_ISSUER.first(session, {"counter_id": counter_id})
    if row is None:
        return None
    return Issuer(**{**row, "region_name": row["region_name"] or ""})


def issue(session: Session, k: Kind, step: Step) -> Issued | None:
    """Number and record one notice; None where the issuing counter belongs to no unit."""
    counter_id = _issuing_counter(k, step)
    by = issuer(session, counter_id) if counter_id else None
    if by is None:
        return None  # a directory without member units issues no numbered notices
    at: datetime = step.event["at"]
    number = docnumbers.next_number(session, by, k.name, clock.local_date(at).year, step.item.definition.decision)
    title = step.item.definition.document_title(k.name, k.title)
    data = {**common_facts(step, by, at), "kind": k.name, "title": title, "number": number, **k.facts(step)}
    row = INSERT_DOCUMENT.first(session, {
        "case_id": step.case["id"], "kind": k.name, "number": number, "title": title, "unit_id": by.id,
        "counter_id": by.counter_id, "event_seq": step.event["seq"], "issued_at": at,
        "issued_by": step.event.get("actor_id"), "issued_by_name": step.event.get("actor_name") or step.actor.name,
        "data": data,
    })
    assert row is not None  # INSERT … RETURNING answers its row
    return Issued(int(row["id"]), k.name, number, by.counter_id, k.drawn)


def waiting(session: Session, case_id: int, kind: str | None = None) -> list[Issued]:
    """The case's notices that wait to be drawn (``drawn=LEAVING_INTAKE``, no PDF yet, no drawing
    job pending): what leaving the intake phase, or a clerk's print, queues."""
    deferred = {k.name for k in kinds() if k.drawn != ON_ISSUE and kind in (None, k.name)}
    if not deferred:
        return []
    rows = [r for r in SELECT_UNDRAWN_DOCUMENTS.all(session, {"case_id": case_id}) if r["kind"] in deferred]
    if not rows:
        return []
    queued = {int((r["payload"] or {}).get("document_id", 0))
              for r in SELECT_PENDING_JOBS.all(session, {"case_id": case_id, "job": "render_document"})}
    return [Issued(int(r["id"]), r["kind"], r["number"], r["counter_id"], LEAVING_INTAKE)
            for r in rows if r["id"] not in queued]


def leaves_intake(item: CompiledItem, events: list[NewHistoryEvent]) -> bool:
    """Whether these transitions take the case out of the intake phase (to 受理, 不予受理, 撤回 …)."""
    def top(name: str | None) -> str | None:
        return (item.table[name].parallel or name) if name is not None else None
    return any(top(e.get("from_state")) in item.intake_phase and top(e.get("to_state")) not in item.intake_phase
               for e in events if e.get("to_state") is not None)


def common_facts(step: Step, by: Issuer, at: datetime) -> dict[str, Any]:
    case, d = step.case, step.item.definition
    applicant = case["applicant"] or {}
    return {
        "case_number": case["number"], "item_code": d.code, "item_name": d.name, "decision": d.decision,
        "applicant": clip(applicant.get("name"), 200), "applicant_code": clip(applicant.get("id_number"), 40),
        "applicant_address": clip(applicant.get("address"), 300),
        "received_on": cn_date(clock.local_date(case["created_at"])),
        "issued_on": cn_date(clock.local_date(at)),
        "issued_at": clock.local(at).isoformat(timespec="seconds"),
        "unit": {"id": by.id, "name": by.name, "code": by.code, "region": by.region_name},
        "counter": by.counter_name, "clerk": step.event.get("actor_name") or step.actor.name,
        "comment": clip(step.event.get("comment"), MAX_TEXT),
    }


# A notice states what people wrote, bounded: it is drawn within the render budget whatever came in.
MAX_TEXT = 2000


def clip(text: Any, limit: int) -> str:
    value = str(text or "").strip()
    return value if len(value) <= limit else value[:limit - 1] + "…"


def _cipher() -> AESGCM:
    return AESGCM(install_key("document-key", get_settings().document_key))


def seal_code(case_number: str, code: str) -> str:
    """The query code as the 收件凭证's facts keep it: encrypted, bound to its case (never in clear
    in the database), opened only by the job that prints it."""
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _cipher().encrypt(nonce, code.encode(), case_number.encode())).decode()


def open_code(case_number: str, sealed: str) -> str | None:
    raw = base64.b64decode(sealed)
    try:
        return _cipher().decrypt(raw[:12], raw[12:], case_number.encode()).decode()
    except InvalidTag:
        return None  # another installation's key: the receipt says where the code was given


def cn_date(day: date | None) -> str:
    """A calendar date as a notice writes it: 2026年12月2日."""
    return f"{day.year}年{day.month}月{day.day}日" if day is not None else ""


# ----- reading --------------------------------------------------------------------------------

def document(session: Session, doc_id: int) -> dict[str, Any] | None:
    row = session.execute(sa.select(T_DOC).where(T_DOC.c.id == doc_id)).mappings().first()
    return dict(row) if row is not None else None


def list_for_case(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The case's notices and certificates in issue order: kind, number, title, issued_at, sha256,
    and where the bytes are (``evidence_id`` for notices, ``bucket``/``key`` for certificates).
    A notice whose PDF is not drawn yet has no sha256 yet."""
    docs = session.execute(sa.select(
        T_DOC.c.id, T_DOC.c.kind, T_DOC.c.number, T_DOC.c.title, T_DOC.c.issued_at, T_DOC.c.sha256,
        T_DOC.c.evidence_id, T_EVID.c.bucket, T_EVID.c.key,
    ).select_from(T_DOC.outerjoin(T_EVID, T_EVID.c.id == T_DOC.c.evidence_id))
        .where(T_DOC.c.case_id == case_id)).mappings().all()
    certs = session.execute(sa.select(
        T_CERT.c.id, T_CERT.c.number, T_CERT.c.title, T_CERT.c.issued_at, T_CERT.c.sha256,
        T_CERT.c.bucket, T_CERT.c.object_key.label("key"),
    ).where(T_CERT.c.case_id == case_id, T_CERT.c.state == "issued")).mappings().all()  # numbered: not drawn yet
    out = [dict(r) for r in docs] + [{**dict(r), "kind": "certificate", "evidence_id": None} for r in certs]
    out.sort(key=lambda r: (r["issued_at"], r["kind"] == "certificate", r["id"]))
    return out
