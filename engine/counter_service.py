"""The ticket machine's rules per counter and item, from the alliance directory: the hours numbers
are given out (取号时间, on working days only), the walk-in numbers per day (每日号源) and the item
groups (取号分组: the visitor picks a group, then an item; numbers run per group letter).

A counter without rules gives numbers at any time, as many as the letters hold. An item's hours
replace the counter's; both capacities hold (the counter's over all its walk-ins, the item's over
its own). The count and the new number are taken under a lock of the counter's rule row, so two
machines racing for the last number give out one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from engine import workdays
from engine.errors import Conflict
from storage.directory_tables import T_GROUP, T_SERVICE
from storage.hall_tables import T_TICKET

_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
GROUP_LETTERS = "ABCDE"


def hours_problem(text: str) -> str | None:
    """Why ``09:00-12:00,13:30-17:00`` is not a valid set of hours, or None."""
    last = -1
    for span in text.split(","):
        m = _SPAN.match(span.strip())
        if m is None:
            return f"取号时间 '{span.strip()}' 应写作 09:00-12:00, 多段用逗号分隔"
        begin, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
        if not last <= begin < end <= 24 * 60:
            return f"取号时间 '{span.strip()}' 的各段须从早到晚、互不重叠"
        last = end
    return None


def _spans(text: str) -> list[tuple[int, int]]:
    out = []
    for span in text.split(","):
        m = _SPAN.match(span.strip())
        if m:
            out.append((int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])))
    return out


def shown(text: str) -> str:
    """Hours as people read them: 09:00-12:00、13:30-17:00."""
    return "、".join(s.strip() for s in text.split(","))


def is_open(text: str, at: datetime) -> bool:
    local = at.astimezone(clock.zone())
    minute = local.hour * 60 + local.minute
    return any(begin <= minute < end for begin, end in _spans(text))


@dataclass(frozen=True)
class Rule:
    hours: str | None
    capacity: int | None
    group: str | None


def rules(session: Session, counter_id: str, lock: bool = False) -> dict[str, Rule]:
    """The counter's rules by item code ('' for the counter as a whole)."""
    q = sa.select(T_SERVICE).where(T_SERVICE.c.counter_id == counter_id)
    if lock:
        q = q.with_for_update()
    return {r.item_code: Rule(r.hours, r.capacity, r.item_group) for r in session.execute(q)}


def groups(session: Session, counter_id: str) -> dict[str, str]:
    """The counter's item groups, letter → name (none: the machine lists the items at once)."""
    return dict(session.execute(sa.select(T_GROUP.c.letter, T_GROUP.c.name).where(
        T_GROUP.c.counter_id == counter_id).order_by(T_GROUP.c.letter)).all())


def group_of(session: Session, counter_id: str, item_code: str) -> str | None:
    rule = rules(session, counter_id).get(item_code)
    return rule.group if rule else None


def _taken(session: Session, counter_id: str, item_code: str | None) -> int:
    q = sa.select(sa.func.count()).select_from(T_TICKET).where(
        T_TICKET.c.counter_id == counter_id, T_TICKET.c.day == clock.today(), T_TICKET.c.kind == "walk_in")
    if item_code is not None:
        q = q.where(T_TICKET.c.item_code == item_code)
    return int(session.execute(q).scalar_one())


def check_walk_in(session: Session, counter_id: str, item_code: str | None) -> None:
    """Refuse a walk-in number outside the hours, on a day off, or past a capacity (409, naming the
    counter or the item). Locks the counter's rules until the number is taken."""
    found = rules(session, counter_id, lock=True)
    if not found:
        return
    whole, own = found.get(""), found.get(item_code or "\0")
    hours, field = (own.hours, "item") if own and own.hours else (whole.hours if whole else None, "counter")
    if hours:
        if not workdays.calendar(session).is_workday(clock.today()):
            raise Conflict("今日不是工作日, 窗口不取号", field=field)
        if not is_open(hours, clock.now()):
            what = "该事项" if field == "item" else "本窗口"
            raise Conflict(f"{what}取号时间为 {shown(hours)}, 现在不能取号", field=field)
    if whole and whole.capacity is not None and _taken(session, counter_id, None) >= whole.capacity:
        raise Conflict(f"本窗口今日号源 ({whole.capacity} 个) 已取完, 请改日再来或网上预约", field="counter")
    if own and own.capacity is not None and _taken(session, counter_id, item_code) >= own.capacity:
        raise Conflict(f"该事项今日号源 ({own.capacity} 个) 已取完, 请改日再来或网上预约", field="item")


def machine(session: Session, counter_id: str, items: dict[str, str]) -> dict[str, Any]:
    """What the ticket machine shows for a counter: its groups, each with its items (code → name
    given), and for each item whether a number can be had now and how many are left today."""
    found = rules(session, counter_id)
    named = groups(session, counter_id)
    whole = found.get("")
    workday = workdays.calendar(session).is_workday(clock.today())
    left_whole = None if not whole or whole.capacity is None else whole.capacity - _taken(session, counter_id, None)
    out: dict[str, dict[str, Any]] = {}
    for code, name in items.items():
        own = found.get(code)
        letter = (own.group if own and own.group else None) or "A"
        hours = (own.hours if own and own.hours else None) or (whole.hours if whole else None)
        left = None if not own or own.capacity is None else own.capacity - _taken(session, counter_id, code)
        if left_whole is not None:
            left = left_whole if left is None else min(left, left_whole)
        is_now = hours is None or (workday and is_open(hours, clock.now()))
        group = out.setdefault(letter, {"letter": letter, "name": named.get(letter, ""), "items": []})
        group["items"].append({"code": code, "name": name, "hours": shown(hours) if hours else "",
                               "left": max(left, 0) if left is not None else None,
                               "open": is_now and (left is None or left > 0)})
    return {"groups": [out[k] for k in sorted(out)], "named": bool(named),
            "hours": shown(whole.hours) if whole and whole.hours else ""}


def replace(session: Session, counter_id: str, counter_doc: dict[str, Any]) -> None:
    """Write a counter's rules as a checked directory entry states them (the import's part)."""
    session.execute(sa.delete(T_SERVICE).where(T_SERVICE.c.counter_id == counter_id))
    session.execute(sa.delete(T_GROUP).where(T_GROUP.c.counter_id == counter_id))
    if counter_doc.get("hours") or counter_doc.get("capacity") is not None:
        session.execute(sa.insert(T_SERVICE).values(counter_id=counter_id, item_code="",
                                                    hours=counter_doc.get("hours"),
                                                    capacity=counter_doc.get("capacity")))
    for code, rule in (counter_doc.get("service") or {}).items():
        session.execute(sa.insert(T_SERVICE).values(counter_id=counter_id, item_code=code, hours=rule.get("hours"),
                                                    capacity=rule.get("capacity"), item_group=rule.get("group")))
    for letter, name in (counter_doc.get("groups") or {}).items():
        session.execute(sa.insert(T_GROUP).values(counter_id=counter_id, letter=letter, name=name))


def check_entry(c: dict[str, Any], items: dict[str, list[str]], at: tuple[str | int, ...], bad: Any) -> dict[str, Any]:
    """Check a directory counter's ``hours``, ``capacity``, ``groups`` and ``service``; the
    normalized keys (only those given, so documents without them keep their hash)."""
    out: dict[str, Any] = {}

    def capacity(v: Any, where: tuple[str | int, ...]) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 9999:
            bad(where, "每日号源 (capacity) 须为 1 至 9999 的整数")
            return None
        return v

    def hours(v: Any, where: tuple[str | int, ...]) -> str | None:
        if problem := hours_problem(str(v)):
            bad(where, problem)
            return None
        return ",".join(s.strip() for s in str(v).split(","))

    if c.get("hours") is not None:
        out["hours"] = hours(c["hours"], (*at, "hours"))
    if c.get("capacity") is not None:
        out["capacity"] = capacity(c["capacity"], (*at, "capacity"))
    named: dict[str, str] = {}
    raw_groups = c.get("groups")
    if raw_groups is not None:
        if not isinstance(raw_groups, dict):
            bad((*at, "groups"), "groups 必须是映射: 分组字母 (A–E) → 分组名称")
        else:
            for letter, name in raw_groups.items():
                if str(letter) not in GROUP_LETTERS or not str(name or "").strip() or len(str(name)) > 60:
                    bad((*at, "groups", letter), "取号分组为 A 至 E 中的一个字母, 名称不能为空 (最长 60 字)")
                    continue
                named[str(letter)] = str(name).strip()
        out["groups"] = named
    raw = c.get("service")
    if raw is not None:
        service: dict[str, dict[str, Any]] = {}
        if not isinstance(raw, dict):
            bad((*at, "service"), "service 必须是映射: 事项编码 → {hours, capacity, group}")
            raw = {}
        for code, rule in raw.items():
            where = (*at, "service", code)
            if "intake" not in items.get(str(code), []):
                bad(where, f"事项 {code} 不在本窗口收件的事项中")
                continue
            if not isinstance(rule, dict) or set(rule) - {"hours", "capacity", "group"}:
                bad(where, f"事项 {code} 的取号规则只能有 hours, capacity, group")
                continue
            entry: dict[str, Any] = {}
            if rule.get("hours") is not None:
                entry["hours"] = hours(rule["hours"], (*where, "hours"))
            if rule.get("capacity") is not None:
                entry["capacity"] = capacity(rule["capacity"], (*where, "capacity"))
            if rule.get("group") is not None:
                if str(rule["group"]) not in named:
                    bad((*where, "group"), f"事项 {code} 的取号分组 '{rule['group']}' 未在 groups 中列出")
                entry["group"] = str(rule["group"])
            service[str(code)] = entry
        out["service"] = service
    return out
