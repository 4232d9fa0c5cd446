"""The query code's guard: a budget of wrong codes per case number, whoever sends them.

A per-client budget alone lets anyone with many addresses (or a spoofable one) guess one case's
code at will. So every wrong code for a case counts against that case: after
``progress_case_failures`` wrong codes within ``progress_case_window_seconds``, the case's
progress query and withdrawal answer 429 for ``progress_lockout_seconds`` — to everyone, the
right code included — and its counter's supervisor gets one notice for the lockout.

Why the right code is refused too: during a lockout the code must not be compared at all, or a
guess that happens to be right would still get through and the lockout would only slow guessing
down for those who get it wrong. The price is that someone who knows a case number can keep its
anonymous query locked (ten wrong codes an hour) — denial of service, never disclosure. The
applicant still has the counter (the case itself moves on, clerks see it, notices reach the
applicant), and the supervisor learns of each lockout. A 10-character code over 32 symbols
against ten guesses an hour is out of reach of guessing.

The count is durable (``storage.guard_tables``): every server worker and restart shares it.
Unknown case numbers have no row; they get the same budget and the same answers in process
memory (``engine.ratelimit``), so a lockout does not tell which numbers exist (with N workers an
unknown number locks after up to N times the budget). A case number later created starts clean:
the case's own row decides from then on.

Failures are written in a unit of their own: the request's unit rolls back with the refusal (and
a GET's is read-only). The caller must not have begun its own write unit yet (on SQLite a second
writer on the same thread would wait for itself).
"""

from __future__ import annotations

import hmac
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core import clock
from core.settings import get_settings
from engine.errors import EngineError, NotFound
from engine.intake import hash_query_code
from engine.ratelimit import BoundedWindows, retry_after
from storage.db import session_scope
from storage.flow_tables import Notification
from storage.guard_tables import T_QUERY_GUARD
from storage.tables import T_CASE, Counter

WRONG = "未找到该办件, 请核对办件编号和查询码"
MAX_NUMBER = 32  # cases.number's length: a longer one cannot exist


class QueryLocked(EngineError):
    status, type, title = 429, "/problems/query-locked", "查询码错误次数过多"
    help = ("该办件的查询码已连续输错多次, 查询暂时锁定,"
            " 以防他人猜测查询码。答复的 Retry-After 说明多少秒后可再试;"
            " 忘记查询码请到收件窗口, 凭身份证件查询。")


def _locked(seconds: float) -> QueryLocked:
    wait = retry_after(seconds)
    minutes = max(1, round(wait / 60))
    return QueryLocked(f"该办件的查询码错误次数过多, 查询已暂停, 请约 {minutes} 分钟后再试; "
                       "也可携带身份证件到窗口查询", retry_after=wait)


_unknown: BoundedWindows | None = None
_unknown_lock = threading.Lock()


def _unknown_numbers() -> BoundedWindows:
    global _unknown
    with _unknown_lock:
        s = get_settings()
        if _unknown is None or _unknown.window != s.progress_case_window_seconds:
            _unknown = BoundedWindows(s.progress_case_window_seconds, s.rate_limit_max_keys)
        return _unknown


def check_code(engine: sa.Engine, number: str, code: str) -> None:
    """Pass when ``code`` is the case's query code; raise 404 (wrong code, unknown number — alike)
    or 429 (the case number is locked). Counts the failure and may start a lockout."""
    s = get_settings()
    if len(number) > MAX_NUMBER:
        raise NotFound(WRONG)
    at = clock.now()
    with session_scope(engine, readonly=True) as session:
        case = session.execute(sa.select(T_CASE.c.id, T_CASE.c.query_code_hash).where(
            T_CASE.c.number == number)).first()
        guard = None if case is None else session.execute(sa.select(T_QUERY_GUARD.c.locked_until).where(
            T_QUERY_GUARD.c.case_id == case.id)).first()
    if case is None:
        unknown = _unknown_numbers()
        if (left := unknown.locked_for(number)) is not None:
            raise _locked(left)
        unknown.hit(number, s.progress_case_failures, lockout=s.progress_lockout_seconds)
        raise NotFound(WRONG)
    if guard is not None and guard.locked_until is not None and guard.locked_until > at:
        raise _locked((guard.locked_until - at).total_seconds())
    if hmac.compare_digest(case.query_code_hash, hash_query_code(number, code)):
        return
    left = record_failure(engine, case.id, number, at)
    if left is not None:  # locked meanwhile by a concurrent request
        raise _locked(left)
    raise NotFound(WRONG)



def record_failure(engine: sa.Engine, case_id: int, number: str, at: datetime) -> float | None:
    """Count one wrong code; the one that exhausts the budget locks the case and notifies its
    counter's supervisor (once per lockout). Returns the seconds left if the case was already
    locked."""
    s = get_settings()
    window = timedelta(seconds=s.progress_case_window_seconds)
    with session_scope(engine) as session:
        dialect = session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(T_QUERY_GUARD)
        session.execute(insert.values(case_id=case_id, failures=0, lockouts=0).on_conflict_do_nothing())
        row = session.execute(sa.select(T_QUERY_GUARD).where(T_QUERY_GUARD.c.case_id == case_id)
                              .with_for_update()).mappings().one()
        if row["locked_until"] is not None and row["locked_until"] > at:
            return (row["locked_until"] - at).total_seconds()
        started, failures = row["window_started_at"], row["failures"]
        if started is None or at - started >= window:
            started, failures = at, 0
        failures += 1
        values: dict[str, object] = {"window_started_at": started, "failures": failures}
        if failures >= s.progress_case_failures:
            until = at + timedelta(seconds=s.progress_lockout_seconds)
            lockouts = row["lockouts"] + 1
            values.update(window_started_at=None, failures=0, locked_until=until, lockouts=lockouts)
            _notify_supervisor(session, case_id, number, failures, at, until, lockouts)
        session.execute(sa.update(T_QUERY_GUARD).where(T_QUERY_GUARD.c.case_id == case_id).values(**values))
    return None


def _notify_supervisor(session: sa.orm.Session, case_id: int, number: str, failures: int, at: datetime,
                       until: datetime, lockouts: int) -> None:
    counter = session.execute(sa.select(Counter.name).join(T_CASE, T_CASE.c.competent_counter_id == Counter.id)
                              .where(T_CASE.c.id == case_id)).scalar_one()
    minutes = round(get_settings().progress_case_window_seconds / 60)
    session.add(Notification(
        dedupe_key=f"query-lock:{case_id}:{lockouts}", case_id=case_id, audience="supervisor",
        kind="query_locked", created_at=at,
        message=(f"办件 {number} ({counter}) 的进度查询在 {minutes} 分钟内收到 {failures} 次错误的查询码, "
                 f"已暂停查询至 {clock.local(until):%Y-%m-%d %H:%M}; 如非申请人本人所为, 可能有人在猜测查询码。")))
