"""The statements on a clerk's hot path, in one place: every request and every transition runs them.

When to use which (keep to it when adding a query):
- ``storage.prepared.Prepared`` for a statement that runs on every request or every transition
  (token lookup, case read and write, history, outbox, holders, materials). SQLAlchemy's
  per-execute machinery cost more than SQLite's work there: moving these statements took the
  engine from 1,431 to about 3,000 transitions/s on SQLite (docs/decisions/0003). Plain
  statements only: no expanding ``IN``, no ORM entities.
- The ORM or plain Core ``session.execute`` for everything else (pages, dashboards, lookups by a
  clerk's click, administration): clearer, and its cost is lost in the request.
"""

from __future__ import annotations

import sqlalchemy as sa

from storage.calendar_tables import T_SCHEDULE
from storage.documents import T_PAGE
from storage.flow_tables import T_CERT, Waybill
from storage.notice_tables import T_DOC
from storage.prepared import Prepared
from storage.tables import T_CASE, T_HIST, T_HOLD, T_MAT, T_OUT, ApiToken, Clerk, Counter, Region, Unit

# Every API request runs this; no cache, so a revoked token stops working on the next request.
SELECT_TOKEN = Prepared(
    sa.select(Clerk.id, Clerk.name, Clerk.counter_id, Clerk.roles, Clerk.active,
              ApiToken.expires_at, ApiToken.revoked_at, Counter.region_code, Counter.name.label("counter_name"))
    .join(ApiToken, ApiToken.clerk_id == Clerk.id)
    .outerjoin(Counter, Counter.id == Clerk.counter_id)
    .where(ApiToken.token_hash == sa.bindparam("token_hash"))
)

_CASE_BY_NUMBER = sa.select(T_CASE).where(T_CASE.c.number == sa.bindparam("number"))
SELECT_CASE = Prepared(_CASE_BY_NUMBER)
# PostgreSQL: the row stays locked until commit, so the version read is the version written over
# and a transition's writes can go in one round trip (storage.prepared.pipelined). SQLite's
# writer lock already serialises write units; FOR UPDATE renders as nothing there.
SELECT_CASE_LOCKED = Prepared(_CASE_BY_NUMBER.with_for_update())
UPDATE_CASE = Prepared(
    sa.update(T_CASE)
    .where(T_CASE.c.id == sa.bindparam("case_id"), T_CASE.c.version == sa.bindparam("expected"))
    .values({c: sa.bindparam(c) for c in ("state", "branches", "version", "status_code", "assignees",
                                          "updated_at", "finished_at", "last_hash", "commitment")})
)
BUMP_CASE = Prepared(
    sa.update(T_CASE)
    .where(T_CASE.c.id == sa.bindparam("case_id"), T_CASE.c.version == sa.bindparam("expected"))
    .values({c: sa.bindparam(c) for c in ("version", "updated_at", "assignees", "last_hash")})
)
INSERT_HISTORY = Prepared(sa.insert(T_HIST))
INSERT_OUTBOX = Prepared(sa.insert(T_OUT))
INSERT_HOLDER = Prepared(sa.insert(T_HOLD))
SELECT_HOLDERS = Prepared(sa.select(T_HOLD.c.counter_id).where(T_HOLD.c.case_id == sa.bindparam("case_id")))
DELETE_HOLDER = Prepared(sa.delete(T_HOLD).where(T_HOLD.c.case_id == sa.bindparam("case_id"),
                                                  T_HOLD.c.counter_id == sa.bindparam("counter_id")))
SELECT_NUMBER = Prepared(sa.select(T_CASE.c.number).where(T_CASE.c.id == sa.bindparam("case_id")))
SELECT_MATERIALS = Prepared(sa.select(T_MAT).where(T_MAT.c.case_id == sa.bindparam("case_id")))

# The law's periods, written when 受理, the decision or a clock pause/resume changes them.
PERIOD_COLUMNS = ("accepted_at", "supplement_notice_due", "promised_due", "legal_due", "certificate_due",
                  "deadline_provisional", "clock_paused_at", "paused_days", "extended_days")
UPDATE_PERIODS = Prepared(
    sa.update(T_CASE).where(T_CASE.c.id == sa.bindparam("case_id"))
    .values({c: sa.bindparam(c) for c in PERIOD_COLUMNS})
)
# Every deadline computation asks whether a year's official schedule was published meanwhile.
SELECT_SCHEDULES = Prepared(sa.select(T_SCHEDULE.c.year, T_SCHEDULE.c.content_hash))

# Written notices (engine.documents): most steps issue one, and each reads its issuer and writes a row.
SELECT_ISSUER = Prepared(
    sa.select(Counter.id.label("counter_id"), Counter.name.label("counter_name"), Unit.id, Unit.name, Unit.code,
              Unit.doc_abbr, Unit.doc_format, Unit.doc_words, Region.name.label("region_name"))
    .join(Unit, Unit.id == Counter.unit_id)
    .outerjoin(Region, Region.code == Unit.region_code)
    .where(Counter.id == sa.bindparam("counter_id"))
)
INSERT_DOCUMENT = Prepared(sa.insert(T_DOC).returning(T_DOC.c.id))
SELECT_DOCUMENT_OF_KIND = Prepared(
    sa.select(T_DOC.c.id).where(T_DOC.c.case_id == sa.bindparam("case_id"), T_DOC.c.kind == sa.bindparam("kind"))
    .limit(1)
)
SELECT_PAGE_COUNTS = Prepared(
    sa.select(T_PAGE.c.material_id, sa.func.count().label("pages"))
    .where(T_PAGE.c.case_id == sa.bindparam("case_id"), T_PAGE.c.withdrawn_at.is_(None))
    .group_by(T_PAGE.c.material_id)
)
# 受理 leaving intake draws the 收件凭证 unless it is drawn or queued (engine.documents.waiting).
SELECT_UNDRAWN_DOCUMENTS = Prepared(
    sa.select(T_DOC.c.id, T_DOC.c.kind, T_DOC.c.number, T_DOC.c.counter_id)
    .where(T_DOC.c.case_id == sa.bindparam("case_id"), T_DOC.c.evidence_id.is_(None))
)
SELECT_PENDING_JOBS = Prepared(
    sa.select(T_OUT.c.payload).where(T_OUT.c.case_id == sa.bindparam("case_id"), T_OUT.c.job == sa.bindparam("job"),
                                     T_OUT.c.status == "pending")
)
# What a 送达回证 lists (engine.document_kinds.service), at every 办结.
SELECT_DOCUMENTS_OF_KIND = Prepared(
    sa.select(T_DOC.c.title, T_DOC.c.number)
    .where(T_DOC.c.case_id == sa.bindparam("case_id"), T_DOC.c.kind == sa.bindparam("kind")).order_by(T_DOC.c.id)
)
SELECT_CERTIFICATES = Prepared(
    sa.select(T_CERT.c.title, T_CERT.c.number).where(T_CERT.c.case_id == sa.bindparam("case_id")).order_by(T_CERT.c.id)
)
SELECT_WAYBILL = Prepared(
    sa.select(Waybill.number, Waybill.carrier).where(Waybill.case_id == sa.bindparam("case_id")).limit(1)
)
# Every case answer of an item with 免提交 materials reads what intake took from the library.
SELECT_EVENT_DATA = Prepared(
    sa.select(T_HIST.c.data).where(T_HIST.c.case_id == sa.bindparam("case_id"), T_HIST.c.kind == sa.bindparam("kind"))
    .order_by(T_HIST.c.seq).limit(1)
)
