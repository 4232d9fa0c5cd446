"""办件 data exchange with provincial platforms: cases in the data items of GB/T 39046-2020
(政务服务平台基础数据规范), incremental by cursor, as JSON records or CSV rows.

One record per case, in the standard's data sets: 办事申请 (表5, the case's basic information),
事项受理 (表6), 事项办理 (表7: the steps of the process, and 特别程序), 事项办结 (表8) and 政务服务绩效评价
(表9), with the standard's code sets (附录A) and the exchange status 办件状态 1–15. Where our model has
no source for a data item it is null, and docs/api/exchange.md says so item by item.

Who may export (``exporter``): accounts with the ``exchange`` role (another platform's integration
account) get every case with the applicants' personal data, which the receiving platform needs
(申请者名称, 证件类型, 证件号码, 联系电话, 通讯地址); supervisors get the cases of their regions with that
data left out; nobody else. Every export is recorded in ``exchange_exports`` (who, when, which
cases, with personal data or not): a table rather than a log line, because providing personal
information to another processor has to be answerable per applicant long after logs rotate
(个人信息保护法 art. 23, 55, 56), and the case's own history cannot hold it — an event there bumps the
case's version, and the export would hand the case out again for ever.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock, wire
from engine import catalog
from engine.actors import Actor
from engine.dashboard import visible_counters
from engine.directory import clerk_names
from engine.errors import Forbidden, InvalidInput
from engine.views import STATUS_LABELS
from states.compiler import CompiledItem
from states.defaults import is_send_back
from states.vocabulary import CASE_TYPES
from storage.db import bound_engine, session_scope
from storage.exchange_tables import T_CHANGE, T_EXPORT
from storage.flow_tables import Certificate, Waybill
from storage.rows import CaseRow, HistoryRow
from storage.tables import T_CASE, T_HIST, Counter

log = logging.getLogger("tongban.exchange")

EXPORT_ROLE = "exchange"
MAX_LIMIT = 500

# --- code sets (GB/T 39046-2020 附录A, and the ones the standard points to) --------------------

ITEM_TYPES = {  # A.1 事项类型代码
    "00": "行政权力事项", "01": "行政许可", "02": "行政处罚", "03": "行政强制", "04": "行政征收",
    "05": "行政给付", "06": "行政检查", "07": "行政确认", "08": "行政奖励", "09": "行政裁决",
    "10": "其他类别事项", "20": "公共服务事项",
}
APPLICANT_TYPES = {"1": "自然人", "2": "企业法人", "3": "事业法人", "4": "社会组织法人", "5": "行政机关",
                   "6": "其他组织"}  # A.4 服务对象代码
SOURCES = {"1": "窗口办理", "2": "电脑端网上办理", "3": "移动端网上申请", "4": "快递申请", "9": "其他"}  # A.5
CASE_TYPE_CODES = {label: str(code) for label, code in CASE_TYPES.items()}  # A.6 办件类型代码 (9 其他)
SPECIAL_KINDS = {"1": "延长审批", "2": "除延长审批之外的情况"}  # A.7 特别程序种类代码
SATISFACTION = {"1": "非常满意", "2": "满意", "3": "基本满意", "4": "不满意", "5": "非常不满意"}  # A.8
STEP_STATUS = {"1": "待办", "2": "已办"}  # 表7 环节办理状态代码
ACTIONS = ("通过", "退回", "其他")  # 表7 业务动作
# 申请者证件类型代码: GA/T 2000.156 常用证件代码 (n3). 111 居民身份证; 990 其他 — the code list has no
# entry for 统一社会信用代码, so a company's code goes as 990 with the name saying what it is.
ID_TYPES = {"111": "居民身份证", "990": "其他"}
# 通办模式 (国办发〔2020〕35号 names the three modes and gives them no codes): this product's codes.
MODES = {"全程网办": "1", "异地代收代办": "2", "多地联办": "3"}

_CITIZEN_ID = re.compile(r"^[0-9]{17}[0-9Xx]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def is_citizen_id(number: str) -> bool:
    """居民身份证号码 with its check character (GB 11643-1999, ISO 7064 MOD 11-2)."""
    if not _CITIZEN_ID.match(number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


# --- the cursor ---------------------------------------------------------------------------------
#
# A case appears again whenever it changed after the cursor, so the order is "newest committed
# change", and the cursor is a position in it: (seq, case id), seq from ``case_changes``, which
# triggers on ``cases`` keep for every writer (storage.exchange_tables).
#
# Why not ``cases.updated_at`` + id: the instant is taken while a transaction runs, but its rows
# become visible when it commits, and on PostgreSQL concurrent transactions commit in any order.
# A writer that stamped 10:00:00.001 and commits after one that stamped .002 lands behind a cursor
# a reader already moved past .002: that change would never be exported. A sequence or an id has
# the same gap. So on PostgreSQL seq is the id of the transaction that wrote the case
# (``txid_current()``) and a reader only hands out rows whose transaction id lies below the
# oldest transaction still running (``txid_snapshot_xmin``): every transaction below it has
# ended and is visible, and every later write gets a higher id — nothing can appear behind the
# cursor. The price: one long-running transaction holds the export back (it lags; it never
# skips) — in any database of the server, since transaction ids are the server's. On SQLite
# writers take turns (one writer lock), and seq is a counter taken under it, so commit order is
# seq order and no horizon is needed.

CURSOR_PATTERN = r"^[0-9]{1,18}-[0-9]{1,18}$"
_CURSOR = re.compile(CURSOR_PATTERN)


@dataclass(frozen=True, order=True)
class Cursor:
    seq: int
    case_id: int

    def __str__(self) -> str:
        return f"{self.seq}-{self.case_id}"


START = Cursor(0, 0)


def parse_cursor(text: str | None, field_name: str = "after") -> Cursor:
    """The cursor a client was given (``next_cursor`` or a record's ``cursor``); none: the start."""
    if text is None or text == "":
        return START
    if not _CURSOR.match(text):
        raise InvalidInput(field_name, "续传游标无效 (须为上次导出给出的 next_cursor 或记录的 cursor)")
    seq, case_id = text.split("-")
    return Cursor(int(seq), int(case_id))


def horizon(session: Session) -> int | None:
    """Positions at or above this may still gain rows behind them (PostgreSQL); None: no limit."""
    if bound_engine(session).dialect.name != "postgresql":
        return None
    return int(session.execute(sa.text("SELECT txid_snapshot_xmin(txid_current_snapshot())")).scalar_one())


class ChangedCase(CaseRow):
    """A case row with its place in the change order (``case_changes.seq``)."""

    seq: int


# --- who may export -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    counters: frozenset[str] | None  # None: every case
    personal: bool  # applicants' personal data included
    regions: tuple[str, ...] = ()


def exporter(session: Session, actor: Actor) -> Scope:
    """What ``actor`` may export: everything with personal data (the exchange role, the system),
    a supervisor's regions without it, or nothing (403)."""
    if actor.is_system or EXPORT_ROLE in actor.roles:
        return Scope(None, True)
    if "supervisor" in actor.roles:
        counters = visible_counters(session, actor)
        return Scope(frozenset(counters), False, tuple(sorted({c["region"] for c in counters.values()})))
    raise Forbidden("办件数据交换只对数据交换账号 (exchange) 和督查人员开放", missing=["role:exchange|supervisor"])


# --- a page -----------------------------------------------------------------------------------------

@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: Cursor
    full: bool  # as many as asked for: more may follow at once
    scope: Scope
    numbers: list[str] = field(default_factory=list)


def export_page(session: Session, actor: Actor, after: Cursor = START, limit: int = 100) -> Page:
    """The cases changed after ``after``, oldest change first, as exchange records."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"每页 1–{MAX_LIMIT} 件")
    scope = exporter(session, actor)
    top = horizon(session)
    rows: list[ChangedCase] = []
    position = after
    # A supervisor's cases are picked from the change order: read on until the page is full or
    # the order ends; the cursor moves past what was read, shown or not.
    while len(rows) < limit:
        want = limit - len(rows) if scope.counters is None else max(limit, 100)
        q = (sa.select(T_CHANGE.c.seq, T_CASE).join(T_CASE, T_CASE.c.id == T_CHANGE.c.case_id)
             .where(sa.tuple_(T_CHANGE.c.seq, T_CHANGE.c.case_id) > sa.tuple_(position.seq, position.case_id))
             .order_by(T_CHANGE.c.seq, T_CHANGE.c.case_id).limit(want))
        if top is not None:
            q = q.where(T_CHANGE.c.seq < top)
        batch: list[ChangedCase] = [dict(r) for r in session.execute(q).mappings()]  # type: ignore[misc]
        for r in batch:
            if len(rows) == limit:
                break
            position = Cursor(int(r["seq"]), int(r["id"]))
            if scope.counters is None or scope.counters & set(r["parties"].values()):
                rows.append(r)
        if len(batch) < want:
            break
    items = records(session, rows, personal=scope.personal)
    return Page(items, position, len(rows) == limit, scope, [r["number"] for r in rows])


def export_all(session: Session, actor: Actor, after: Cursor = START, page_size: int = MAX_LIMIT,
               max_cases: int | None = None) -> Page:
    """Every case changed after ``after`` (the command line's export): pages until caught up."""
    out = export_page(session, actor, after, page_size)
    while out.full and (max_cases is None or len(out.items) < max_cases):
        more = export_page(session, actor, out.next_cursor, page_size)
        if not more.items and more.next_cursor == out.next_cursor:
            break
        out = Page(out.items + more.items, more.next_cursor, more.full, out.scope, out.numbers + more.numbers)
    return out


# --- one case as an exchange record ------------------------------------------------------------------

def _instant(at: datetime | None) -> str | None:
    """RFC 3339 in the product's zone (+08:00): the standard's YYYYMMDDThhmmss is local time."""
    return None if at is None else wire.instant(at)


def _day(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _label(item: CompiledItem, name: str | None) -> str | None:
    if name is None:
        return None
    ref = item.table.get(name)
    if ref is None:
        ref = next((r for key, r in item.table.items() if key.endswith("." + name)), None)
    return ref.state.label if ref is not None else name


def _state(item: CompiledItem, name: str | None) -> Any:
    ref = item.table.get(name or "")
    return ref.state if ref is not None else None


def _is_supplement(state: Any) -> bool:
    return state is not None and state.status == 6


def _is_special(state: Any) -> bool:
    """特别程序: a state that stops the clock and is not 补正 (听证、现场踏勘、检验检测、专家评审 …)."""
    return state is not None and state.clock == "pause" and not state.parallel and not _is_supplement(state)


def _action(item: CompiledItem, ev: HistoryRow) -> str:
    """业务动作: 退回 for a send-back or a return to the applicant for 补正; 其他 for a step that ends
    the case otherwise than by approval (不予受理, 不予许可, 撤回); else 通过."""
    dest = _state(item, ev["to_state"])
    src = ev["from_state"] or ""
    t = item.routes.get((ev["trigger"], src)) if ev["trigger"] else None
    if (t is not None and is_send_back(t)) or _is_supplement(dest):
        return "退回"
    if dest is not None and dest.final and dest.outcome not in (None, "approved"):
        return "其他"
    return "通过"


def _transition_label(item: CompiledItem, ev: HistoryRow) -> str | None:
    t = item.routes.get((ev["trigger"], ev["from_state"] or "")) if ev["trigger"] else None
    return t.label if t is not None else ev["trigger"]


@dataclass
class _Directory:
    counters: dict[str, tuple[str, str, str]]  # id → (name, unit, region)
    clerks: dict[int, str]

    def unit(self, counter_id: str | None) -> str | None:
        if counter_id is None or counter_id not in self.counters:
            return None
        name, unit, _ = self.counters[counter_id]
        return unit or name

    def region(self, counter_id: str | None) -> str | None:
        return self.counters[counter_id][2] if counter_id in self.counters else None  # type: ignore[index]


def records(session: Session, rows: list[ChangedCase], *, personal: bool) -> list[dict[str, Any]]:
    """Exchange records of these case rows (``seq`` beside the case's columns), in their order."""
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    events: dict[int, list[HistoryRow]] = defaultdict(list)
    for ev in session.execute(sa.select(T_HIST).where(T_HIST.c.case_id.in_(ids))
                              .order_by(T_HIST.c.case_id, T_HIST.c.seq)).mappings():
        events[ev["case_id"]].append(dict(ev))  # type: ignore[arg-type]
    certs: dict[int, list[Certificate]] = defaultdict(list)
    issued = sa.select(Certificate).where(Certificate.case_id.in_(ids), Certificate.state == "issued")
    for cert in session.execute(issued.order_by(Certificate.decision_seq, Certificate.id)).scalars():
        certs[cert.case_id].append(cert)
    mailed = set(session.execute(sa.select(Waybill.case_id).where(Waybill.case_id.in_(ids))).scalars())
    clerk_ids = {i for r in rows for i in (*r["assignees"].values(), r.get("companion_id")) if i is not None}
    directory = _Directory(
        {c.id: (c.name, c.unit, c.region_code) for c in session.execute(sa.select(Counter)).scalars()},
        clerk_names(session, clerk_ids))
    return [_record(catalog.compiled(session, r["item_version_id"]), r, events[r["id"]], certs[r["id"]],
                    r["id"] in mailed, directory, personal) for r in rows]


def _applicant(case: CaseRow, personal: bool) -> dict[str, Any]:
    a = case["applicant"] or {}
    person = a.get("kind", "person") == "person"
    number = a.get("id_number")
    if not number:
        id_code, id_name = None, None
    elif person and is_citizen_id(number):
        id_code, id_name = "111", ID_TYPES["111"]
    else:
        id_code, id_name = "990", "其他" if person else "统一社会信用代码"
    name = a.get("name") or ""
    if not personal and person:
        name = name[:1] + "*" * max(len(name) - 1, 1)  # a company's name is no personal data
    type_code = "1" if person else "2"
    return {
        "applicant_type_code": type_code, "applicant_type": APPLICANT_TYPES[type_code],
        "applicant_name": name, "applicant_id_type_code": id_code, "applicant_id_type": id_name,
        "applicant_id_number": number if personal else None,
        "contact_phone": a.get("phone") if personal else None,
        "address": a.get("address") if personal else None,
    }


def _record(item: CompiledItem, case: ChangedCase, events: list[HistoryRow], certs: list[Certificate],
            mailed: bool, directory: _Directory, personal: bool) -> dict[str, Any]:
    d = item.definition
    case_type_code = CASE_TYPE_CODES.get(d.case_type, "9")
    source = "2" if case["mode"] == "全程网办" else "1"
    intake, competent = case["intake_counter_id"], case["competent_counter_id"]
    application = {
        "case_number": case["number"], "implementation_code": d.code, "item_name": d.name,
        "item_version": d.version, "item_type_code": d.item_type, "item_type": ITEM_TYPES.get(d.item_type),
        "case_type_code": case_type_code, "case_type": d.case_type,
        **_applicant(case, personal),
        "source_code": source, "source": SOURCES[source],
        "mode_code": MODES.get(case["mode"]), "mode": case["mode"],
        "applied_at": _instant(case["created_at"]),
        "region_code": directory.region(intake),
        "intake_counter": intake, "intake_unit": directory.unit(intake),
        "competent_counter": competent, "competent_unit": directory.unit(competent),
        "competent_region_code": directory.region(competent),
        "status_code": case["status_code"], "status": STATUS_LABELS[case["status_code"]],
    }
    moves = [ev for ev in events if ev["kind"] == "transition"]
    steps, special, supplements = _process(item, case, events, moves, directory)
    return {
        "cursor": str(Cursor(int(case["seq"]), int(case["id"]))),
        "case_number": case["number"],
        "version": case["version"],
        "changed_at": _instant(case["updated_at"]),
        "application": application,
        "acceptance": _acceptance(item, case, moves, directory, case_type_code),
        "steps": steps,
        "special_procedures": special,
        "supplements": supplements,
        "completion": _completion(item, case, moves, certs, mailed, directory),
        # 表9: the product keeps no 好差评 yet; the key is here so that a receiver's mapping holds.
        "evaluations": [],
    }


def _acceptance(item: CompiledItem, case: CaseRow, moves: list[HistoryRow], directory: _Directory,
                case_type_code: str) -> dict[str, Any] | None:
    """事项受理 (表6): the step that left the intake phase (受理), from the time the periods run."""
    if case.get("accepted_at") is None:
        return None
    ev = next((e for e in moves if e["at"] == case["accepted_at"]), None) or next(
        (e for e in moves if (e["from_state"] or "").split(".")[0] in item.intake_phase
         and (e["to_state"] or "").split(".")[0] not in item.intake_phase), None)
    counter = ev["counter_id"] if ev else case["competent_counter_id"]
    return {
        "unit_name": directory.unit(counter), "unit_credit_code": None,
        "clerk": ev["actor_name"] if ev else None,
        "accepted_at": _instant(case["accepted_at"]), "document_number": None,
        "promised_due": _day(case.get("promised_due")), "legal_due": _day(case.get("legal_due")),
        "case_type_code": case_type_code, "case_type": item.definition.case_type,
        "region_code": directory.region(counter), "counter_id": counter,
    }


def _process(item: CompiledItem, case: CaseRow, events: list[HistoryRow], moves: list[HistoryRow],
             directory: _Directory) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """事项办理 (表7): one step per state the case left (and the one it is in), 特别程序 (a pausing state
    other than 补正; 延期 as 延长审批), and 补正 (an extension of the standard's data sets)."""
    entered: dict[str, tuple[datetime, HistoryRow | None]] = {item.initial: (case["created_at"], None)}
    steps: list[dict[str, Any]] = []
    special: list[dict[str, Any]] = []
    supplements: list[dict[str, Any]] = []
    for ev in moves:
        src, dest = ev["from_state"] or item.initial, ev["to_state"] or ""
        started, entry = entered.get(src, (case["created_at"], None))
        steps.append({
            "seq": ev["seq"], "step_name": _label(item, src), "action": _action(item, ev),
            "action_label": _transition_label(item, ev), "handler": ev["actor_name"], "opinion": ev["comment"],
            "started_at": _instant(started), "ended_at": _instant(ev["at"]),
            "unit_name": directory.unit(ev["counter_id"]), "unit_credit_code": None,
            "status_code": "2", "status": STEP_STATUS["2"], "counter_id": ev["counter_id"],
        })
        left = _state(item, src)
        if _is_special(left):
            special.append(_special(item, _label(item, src), started, entry, ev, directory))
        if _is_supplement(left):
            supplements.append(_supplement(started, entry, ev, directory))
        entered[dest] = (ev["at"], ev)
    here = _state(item, case["state"])
    if here is not None and not here.final:
        started, entry = entered.get(case["state"], (case["updated_at"], None))
        holder = case["assignees"].get(case["competent_counter_id"]) or case.get("companion_id")
        at = _instant(started)
        steps.append({
            "seq": None, "step_name": here.label, "action": None, "action_label": None,
            "handler": directory.clerks.get(holder) if holder else None, "opinion": None,
            "started_at": at, "ended_at": at,  # 表7: 如没有结束时间, 则填写开始时间
            "unit_name": None, "unit_credit_code": None, "status_code": "1", "status": STEP_STATUS["1"],
            "counter_id": None,
        })
        if _is_special(here):
            special.append(_special(item, here.label, started, entry, None, directory))
        if _is_supplement(here):
            supplements.append(_supplement(started, entry, None, directory))
    for ev in events:
        if ev["kind"] == "extension":  # 延期 (行政许可法 art. 42): 延长审批
            data = ev["data"] or {}
            special.append({
                "kind_code": "1", "kind": SPECIAL_KINDS["1"], "started_at": _instant(ev["at"]),
                "reason": ev["comment"], "applicant": ev["actor_name"], "ended_at": _instant(ev["at"]),
                "result": f"法定办结日由 {data.get('legal_due_before')} 延至 {data.get('legal_due')}"
                          f" (延长 {data.get('days')} 个工作日)",
                "opinion": ev["comment"], "unit_name": directory.unit(ev["counter_id"]), "unit_credit_code": None,
                "handler": ev["actor_name"], "seq": ev["seq"],
            })
    special.sort(key=lambda s: (s["started_at"] or "", s["seq"] or 0))
    return steps, special, supplements


def _special(item: CompiledItem, name: str | None, started: datetime, entry: HistoryRow | None,
             leave: HistoryRow | None, directory: _Directory) -> dict[str, Any]:
    """A pausing state other than 补正 (种类 2); ``leave`` is the step that ended it, if one did."""
    counter = (leave or entry or {}).get("counter_id")
    return {
        "kind_code": "2", "kind": name, "started_at": _instant(started),
        "reason": (entry or {}).get("comment") or (_transition_label(item, entry) if entry else None),
        "applicant": (entry or {}).get("actor_name"),
        "ended_at": _instant(leave["at"]) if leave else None,
        "result": _transition_label(item, leave) if leave else None,
        "opinion": (leave or {}).get("comment"), "unit_name": directory.unit(counter), "unit_credit_code": None,
        "handler": (leave or {}).get("actor_name"), "seq": (entry or {}).get("seq"),
    }


def _supplement(started: datetime, entry: HistoryRow | None, leave: HistoryRow | None,
                directory: _Directory) -> dict[str, Any]:
    return {
        "notified_at": _instant(started), "reason": (entry or {}).get("comment"),
        "notified_by": (entry or {}).get("actor_name"), "unit_name": directory.unit((entry or {}).get("counter_id")),
        "completed_at": _instant(leave["at"]) if leave else None,
        "completed_by": (leave or {}).get("actor_name"),
    }


def _completion(item: CompiledItem, case: CaseRow, moves: list[HistoryRow], certs: list[Certificate],
                mailed: bool, directory: _Directory) -> dict[str, Any] | None:
    """事项办结 (表8): set once the case reached a final state."""
    state = _state(item, case["state"])
    if case["finished_at"] is None or state is None or not state.final:
        return None
    last = moves[-1] if moves else None
    cert = next((c for c in reversed(certs) if c.revoked_at is None), None)
    counter = last["counter_id"] if last and last["counter_id"] else case["competent_counter_id"]
    return {
        "handler": last["actor_name"] if last else None, "finished_at": _instant(case["finished_at"]),
        "certificate_name": cert.title if cert else None, "certificate_number": cert.number if cert else None,
        "result": f"{STATUS_LABELS[case['status_code']]}: {state.label}",
        "valid_until": _day(cert.valid_until) if cert else None,
        "issuer": (cert.issuer_name or directory.unit(cert.counter_id)) if cert else None,
        "region_code": directory.region(counter), "mailed": "1" if mailed else "0", "charged": None,
    }


# --- CSV -------------------------------------------------------------------------------------------

# The CSV's columns: the record's scalar items, then the lists as JSON text. The header names each
# column "中文名(code)": the standard's data item name and the record's key (docs/api/exchange.md).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("cursor", "续传游标"), ("case_number", "办件编号"), ("version", "办件版本"), ("changed_at", "变更时间"),
    ("application.implementation_code", "实施编码"), ("application.item_name", "事项名称"),
    ("application.item_version", "事项版本"), ("application.item_type_code", "事项类型代码"),
    ("application.item_type", "事项类型"), ("application.case_type_code", "办件类型代码"),
    ("application.case_type", "办件类型"), ("application.applicant_type_code", "申请人类型代码"),
    ("application.applicant_type", "申请人类型"), ("application.applicant_name", "申请者名称"),
    ("application.applicant_id_type_code", "申请者证件类型代码"), ("application.applicant_id_type", "申请者证件类型"),
    ("application.applicant_id_number", "申请者证件号码"), ("application.contact_phone", "联系人手机号码"),
    ("application.address", "通讯地址"), ("application.source_code", "申报来源代码"),
    ("application.source", "申报来源"), ("application.mode_code", "通办模式代码"), ("application.mode", "通办模式"),
    ("application.applied_at", "申请时间"), ("application.region_code", "行政区划"),
    ("application.intake_counter", "收件窗口"), ("application.intake_unit", "收件单位"),
    ("application.competent_counter", "办理窗口"), ("application.competent_unit", "办理单位"),
    ("application.competent_region_code", "办理地行政区划"), ("application.status_code", "办件状态代码"),
    ("application.status", "办件状态"),
    ("acceptance.unit_name", "受理单位名称"), ("acceptance.unit_credit_code", "受理单位统一社会信用代码"),
    ("acceptance.clerk", "受理人员"), ("acceptance.accepted_at", "受理时间"),
    ("acceptance.document_number", "受理文书编号"), ("acceptance.promised_due", "承诺办结时间"),
    ("acceptance.legal_due", "法定办结时间"), ("acceptance.case_type_code", "受理办件类型代码"),
    ("acceptance.region_code", "受理地行政区划"),
    ("completion.handler", "办理人姓名"), ("completion.finished_at", "办结时间"),
    ("completion.certificate_name", "结果证照名称"), ("completion.certificate_number", "结果证照编号"),
    ("completion.result", "办件结果描述"), ("completion.valid_until", "证照有效期限"),
    ("completion.issuer", "发证/盖章单位"), ("completion.region_code", "办结地行政区划"),
    ("completion.mailed", "是否快递寄送结果"), ("completion.charged", "是否收费"),
    ("steps", "办理环节"), ("special_procedures", "特别程序"), ("supplements", "补正"), ("evaluations", "评价"),
)


def header() -> list[str]:
    return [f"{zh}({code})" for code, zh in COLUMNS]


def _cell(record: dict[str, Any], path: str) -> str:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def to_csv(items: Iterable[dict[str, Any]]) -> str:
    """RFC 4180 text (CRLF line ends), UTF-8 when encoded; empty cells for null items."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header())
    for record in items:
        writer.writerow([_cell(record, code) for code, _ in COLUMNS])
    return out.getvalue()


# --- the export log ----------------------------------------------------------------------------------

def record_export(session: Session, actor: Actor, page: Page, *, channel: str, fmt: str,
                  after: Cursor) -> None:
    """Log the export: a row of ``exchange_exports`` and a log line. A GET's unit is read-only (on
    SQLite it must not turn its snapshot into a write): then the row goes in a short unit of its
    own, committed before the answer leaves — an answer never goes out unrecorded."""
    row = {"at": clock.now(), "clerk_id": actor.id, "actor_name": actor.name, "channel": channel, "format": fmt,
           "after": None if after == START else str(after), "next_cursor": str(page.next_cursor),
           "count": len(page.items), "personal": page.scope.personal, "numbers": page.numbers,
           "scope": {"regions": list(page.scope.regions)} if page.scope.counters is not None else None}
    bind = bound_engine(session)
    if bind.get_execution_options().get("readonly"):
        with session_scope(bind.execution_options(readonly=False)) as writer:
            writer.execute(sa.insert(T_EXPORT).values(row))
    else:
        session.execute(sa.insert(T_EXPORT).values(row))
    log.info("办件数据交换导出: %s (%s, %s) %d 件%s, 游标 %s → %s", actor.name, channel, fmt, len(page.items),
             ", 含申请人个人信息" if page.scope.personal else "", row["after"] or "起点", row["next_cursor"])


def exports(session: Session, number: str | None = None) -> list[dict[str, Any]]:
    """The export log, newest first; with ``number``, the exports that carried that case."""
    rows = [dict(r) for r in session.execute(sa.select(T_EXPORT).order_by(T_EXPORT.c.id.desc())).mappings()]
    return [r for r in rows if number is None or number in r["numbers"]]
