"""The rows the hot path passes around as dicts, as ``TypedDict``s: a case, its history events, its
materials, a claimed outbox job.

Why TypedDicts and not classes: they cost nothing at run time. ``storage.prepared`` and the Core
reads keep returning plain dicts (a TypedDict *is* a dict; nothing is converted or wrapped), while
the types say which keys a row carries and what their values are, for readers and type checkers.
Each full row mirrors its table exactly (column names, and the Python values the statements hand
back); tests/test_typed_rows.py fails when a table and its row type drift apart. Dicts that are
being built (an event before its insert, a material update) have types of their own.
"""

from datetime import date, datetime
from typing import Any, NotRequired, TypedDict


class CaseRow(TypedDict):
    """A row of ``cases`` (``storage.tables.Case``), as ``engine.advance.load_case`` returns it
    and ``engine.intake.create_case`` builds it."""

    id: int
    number: str
    item_version_id: int
    item_code: str
    mode: str
    state: str
    branches: dict[str, str] | None
    status_code: int
    intake_counter_id: str
    competent_counter_id: str
    parties: dict[str, str]  # counter role → counter id
    assignees: dict[str, int]  # counter id → clerk id
    applicant: dict[str, Any]
    query_code_hash: str
    commitment: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    promised_due: date | None
    legal_due: date | None
    finished_at: datetime | None
    version: int
    last_hash: str | None
    clock_paused_at: datetime | None
    paused_days: int | None
    deadline_status: str | None
    accepted_at: datetime | None
    supplement_notice_due: date | None
    certificate_due: date | None
    deadline_provisional: bool
    extended_days: int
    companion_id: int | None


class HistoryRow(TypedDict):
    """A row of ``history`` (``storage.tables.HistoryEvent``), as read back."""

    id: int
    case_id: int
    seq: int
    at: datetime
    kind: str
    actor_id: int | None
    actor_name: str
    counter_id: str | None
    trigger: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    data: dict[str, Any] | None
    prev_hash: str | None
    hash: str


class NewHistoryEvent(TypedDict):
    """A history event before its insert: no ``id``; ``engine.history.chain`` adds the hashes.

    A transition's event (``engine.advance``) has every other key; ``append_event``'s leave out
    ``trigger``, ``from_state`` and ``to_state``; the intake event (``engine.intake``) has no
    ``trigger``, ``from_state`` or ``comment``, and gets its ``case_id`` only as it is inserted,
    once the case row has an id.
    """

    case_id: NotRequired[int]
    seq: int
    at: datetime
    kind: str
    actor_id: int | None
    actor_name: str
    counter_id: str | None
    trigger: NotRequired[str | None]
    from_state: NotRequired[str | None]
    to_state: NotRequired[str | None]
    comment: NotRequired[str | None]
    data: dict[str, Any] | None
    prev_hash: NotRequired[str | None]
    hash: NotRequired[str]


class MaterialRow(TypedDict):
    """A row of ``case_materials`` (``storage.tables.CaseMaterial``)."""

    case_id: int
    material_id: str
    status: str  # missing | received | deferred
    promise: str | None
    deferred_due: date | None
    updated_at: datetime


class MaterialRowUpdate(TypedDict):
    """What a change of one material writes: its ``case_materials`` row without the ``case_id``."""

    material_id: str
    status: str
    promise: str | None
    deferred_due: date | None
    updated_at: datetime


class OutboxRow(TypedDict):
    """A row of ``outbox`` (``storage.tables.OutboxJob``)."""

    id: str
    case_id: int
    job: str
    region_code: str
    counter_id: str | None
    payload: dict[str, Any] | None
    status: str  # pending | running | done | failed
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None
    available_at: datetime | None  # a retried job waits until then (the backoff); None: at once


class OutboxJobRow(OutboxRow):
    """A claimed job, as ``flows.outbox.claim`` hands it to a job handler: its outbox row (status
    ``running``) with the case's number and item code joined in."""

    number: str
    item_code: str


class NewOutboxJob(TypedDict):
    """An outbox row a transition queues (``engine.advance``); ``finished_at``, ``last_error``
    and ``available_at`` are left to the database. The payload carries number, trigger, from, to, from_counter and
    to_counter."""

    id: str
    case_id: int
    job: str
    region_code: str
    counter_id: str | None
    status: str
    attempts: int
    created_at: datetime
    payload: dict[str, Any] | None
