"""分时服务: time slots at a counter for an item, booked by applicants with a confirmation code.

Slots are cut from ``appointment_hours`` on the calendar's working days (调休 Saturdays
included, holidays excluded), from today up to ``appointment_days_ahead``, each with
``appointment_capacity`` places. The place is taken by one guarded UPDATE (``booked <
capacity``): among any number of concurrent bookings of the last place exactly one wins, on
both databases, and the others are told the slot is full. The confirmation code (预约码) is the
applicant's credential for looking the booking up, cancelling or moving it.

No-shows: a booking not checked in ``appointment_grace_minutes`` after its slot began is marked
by ``mark_no_shows``; a phone with ``appointment_no_show_limit`` of them within
``appointment_no_show_days`` cannot book until the oldest falls out of that window.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import clock
from core.settings import get_settings
from engine import catalog, directory, notify, workdays
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from storage.appointment_tables import T_APPT, T_SLOT
from storage.tables import Counter, CounterItem, ItemVersion

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at the counter
CODE_LENGTH = 10
STATUS_LABELS = {"booked": "已预约", "cancelled": "已取消", "checked_in": "已签到", "no_show": "未到 (爽约)"}


@dataclass(frozen=True)
class Slot:
    start: str  # "09:30"
    end: str


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def day_slots() -> list[Slot]:
    """Every slot of a working day, from the configured hours (e.g. ``09:00-12:00,13:30-17:00``)."""
    step = get_settings().appointment_slot_minutes
    out = []
    for span in get_settings().appointment_hours.split(","):
        begin, end = (_minutes(t.strip()) for t in span.split("-"))
        t = begin
        while t + step <= end:
            out.append(Slot(_clock_text(t), _clock_text(t + step)))
            t += step
    return out


def starts_at(day: date, start: str) -> datetime:
    """The instant a slot begins, in the product's zone (stored and compared in UTC)."""
    minutes = _minutes(start)
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=clock.zone())


def bookable(session: Session) -> list[dict[str, Any]]:
    """The items one may book, each with the counters that take it in (收件), for the booking page."""
    rows = session.execute(sa.select(CounterItem.item_code, Counter.id, Counter.name)
                           .join(Counter, Counter.id == CounterItem.counter_id)
                           .where(CounterItem.role == "intake").order_by(CounterItem.item_code, Counter.id)).all()
    latest = sa.select(ItemVersion.code, sa.func.max(ItemVersion.version).label("v")).group_by(
        ItemVersion.code).subquery()
    names = {code: name for code, name in session.execute(
        sa.select(ItemVersion.code, ItemVersion.name).join(
            latest, sa.and_(latest.c.code == ItemVersion.code, latest.c.v == ItemVersion.version)))}
    out: dict[str, dict[str, Any]] = {}
    for code, counter_id, counter_name in rows:
        if code in names:
            out.setdefault(code, {"code": code, "name": names[code], "counters": []})["counters"].append(
                {"id": counter_id, "name": counter_name})
    return sorted(out.values(), key=lambda i: i["name"])


def bookable_days(session: Session) -> list[date]:
    """The working days one may book, from today on."""
    cal, today = workdays.calendar(session), clock.today()
    days = (today + timedelta(days=n) for n in range(get_settings().appointment_days_ahead + 1))
    return [d for d in days if cal.is_workday(d)]


def _check_place(session: Session, counter_id: str, item_code: str) -> Counter:
    counter = directory.counter(session, counter_id)
    if counter is None:
        raise InvalidInput("counter", f"没有窗口 {counter_id}")
    try:
        catalog.latest_version(session, item_code)
    except NotFound as exc:
        raise InvalidInput("item", f"没有事项 {item_code}") from exc
    if item_code not in directory.counter_item_codes(session, counter_id, ("intake",)):
        raise InvalidInput("item", f"{counter.name}不受理该事项, 请选择受理该事项的窗口")
    return counter


def _check_day(session: Session, day: date) -> None:
    today = clock.today()
    last = today + timedelta(days=get_settings().appointment_days_ahead)
    if not today <= day <= last:
        raise InvalidInput("date", f"只能预约 {today} 至 {last} 之间的日期")
    if not workdays.calendar(session).is_workday(day):
        raise InvalidInput("date", f"{day} 不是工作日, 窗口不办公")


def slots(session: Session, counter_id: str, item_code: str, day: date) -> list[dict[str, Any]]:
    """The day's slots with the places left; a slot that has begun cannot be booked."""
    _check_place(session, counter_id, item_code)
    _check_day(session, day)
    # A slot keeps the capacity it was made with; one nobody booked yet has the configured one.
    made = {start: (capacity, booked) for start, capacity, booked in session.execute(
        sa.select(T_SLOT.c.start, T_SLOT.c.capacity, T_SLOT.c.booked)
        .where(T_SLOT.c.counter_id == counter_id, T_SLOT.c.item_code == item_code, T_SLOT.c.day == day))}
    fresh = (get_settings().appointment_capacity, 0)
    now = clock.now()
    out = []
    for s in day_slots():
        capacity, booked = made.get(s.start, fresh)
        left = max(0, capacity - booked)
        out.append({"start": s.start, "end": s.end, "capacity": capacity, "left": left,
                    "open": left > 0 and starts_at(day, s.start) > now})
    return out


def _slot_id(session: Session, counter_id: str, item_code: str, day: date, start: str) -> int:
    """The slot's row, made on its first booking (a racing maker loses the insert, not the place)."""
    where = (T_SLOT.c.counter_id == counter_id, T_SLOT.c.item_code == item_code, T_SLOT.c.day == day,
             T_SLOT.c.start == start)
    found = session.execute(sa.select(T_SLOT.c.id).where(*where)).scalar_one_or_none()
    if found is not None:
        return int(found)
    try:
        with session.begin_nested():
            session.execute(sa.insert(T_SLOT).values(counter_id=counter_id, item_code=item_code, day=day,
                                                     start=start, capacity=get_settings().appointment_capacity,
                                                     booked=0))
    except IntegrityError:
        pass  # made by a concurrent booking since we looked
    return int(session.execute(sa.select(T_SLOT.c.id).where(*where)).scalar_one())


def _take_place(session: Session, slot_id: int) -> None:
    taken = session.execute(sa.update(T_SLOT).where(T_SLOT.c.id == slot_id, T_SLOT.c.booked < T_SLOT.c.capacity)
                            .values(booked=T_SLOT.c.booked + 1)).rowcount
    if taken != 1:
        raise Conflict("该时段已约满, 请选择其他时段", field="start")


def _free_place(session: Session, slot_id: int) -> None:
    session.execute(sa.update(T_SLOT).where(T_SLOT.c.id == slot_id, T_SLOT.c.booked > 0)
                    .values(booked=T_SLOT.c.booked - 1))


def _check_slot(session: Session, day: date, start: str) -> None:
    _check_day(session, day)
    if start not in {s.start for s in day_slots()}:
        raise InvalidInput("start", f"没有 {start} 开始的时段")
    if starts_at(day, start) <= clock.now():
        raise InvalidInput("start", "该时段已经开始, 不能再预约")


def _check_no_shows(session: Session, phone: str) -> None:
    s = get_settings()
    since = clock.now() - timedelta(days=s.appointment_no_show_days)
    missed = session.execute(sa.select(T_APPT.c.no_show_at).where(
        T_APPT.c.phone == phone, T_APPT.c.status == "no_show", T_APPT.c.no_show_at >= since)
        .order_by(T_APPT.c.no_show_at)).scalars().all()
    if len(missed) >= s.appointment_no_show_limit:
        again = clock.local_date(missed[-s.appointment_no_show_limit] + timedelta(days=s.appointment_no_show_days))
        raise Forbidden(f"近 {s.appointment_no_show_days} 天内已有 {len(missed)} 次预约未到, {again} 起可再预约; "
                        "可直接到窗口取号办理", missing=["no_show_limit"])


def book(session: Session, counter_id: str, item_code: str, day: date, start: str, name: str,
         phone: str) -> dict[str, Any]:
    """Take a place; the answer carries the confirmation code (sent by SMS to ``phone`` too)."""
    if len(phone) != 11 or notify.mobile(phone) != phone:
        raise InvalidInput("phone", "请填写 11 位手机号码, 预约码将以短信发送")
    _check_place(session, counter_id, item_code)
    _check_slot(session, day, start)
    _check_no_shows(session, phone)
    same_day = session.execute(
        sa.select(T_APPT.c.code).join(T_SLOT, T_SLOT.c.id == T_APPT.c.slot_id)
        .where(T_APPT.c.phone == phone, T_APPT.c.status == "booked", T_SLOT.c.day == day,
               T_SLOT.c.item_code == item_code)).first()
    if same_day is not None:
        raise Conflict("该手机号当天已预约此事项, 如需改期请用预约码改约", field="phone")
    slot_id = _slot_id(session, counter_id, item_code, day, start)
    _take_place(session, slot_id)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    session.execute(sa.insert(T_APPT).values(code=code, slot_id=slot_id, name=name, phone=phone, status="booked",
                                             created_at=clock.now()))
    booking = view(session, code)
    _tell(session, booking, phone, "booked", f"您已预约{_when(booking)}, 预约码 {code}。请按时到窗口签到; "
                                              "如需取消或改约, 请凭预约码在网上预约页办理。")
    return booking


def _when(booking: dict[str, Any]) -> str:
    return (f"{booking['date'].month}月{booking['date'].day}日 {booking['start']}-{booking['end']} 在"
            f"{booking['counter_name']}办理「{booking['item_name']}」")


def _tell(session: Session, booking: dict[str, Any], phone: str, event: str, text: str) -> None:
    """The booking's SMS, in the booking's transaction (a move may happen more than once: its key
    carries the new slot and the moment)."""
    key = f"appointment:{booking['code']}:{event}"
    if event == "moved":
        key += f":{booking['date']}:{booking['start']}:{clock.now().timestamp():.0f}"
    notify.to_applicant_phone(session, key, phone, f"appointment_{event}", text)


def _row(session: Session, code: str, *, lock: bool = False) -> Any:
    q = sa.select(T_APPT).where(T_APPT.c.code == code.strip().upper())
    row = session.execute(q.with_for_update() if lock else q).mappings().first()
    # Compared again in constant time: a near-miss code takes as long as a wrong one.
    if row is None or not hmac.compare_digest(row["code"], code.strip().upper()):
        raise NotFound("未找到该预约, 请核对预约码")
    return row


def view(session: Session, code: str) -> dict[str, Any]:
    row = _row(session, code)
    slot = session.execute(sa.select(T_SLOT).where(T_SLOT.c.id == row["slot_id"])).mappings().one()
    counter = directory.counter(session, slot["counter_id"])
    item = catalog.latest_version(session, slot["item_code"])  # published items are never deleted
    end = next((s.end for s in day_slots() if s.start == slot["start"]), slot["start"])
    return {"code": row["code"], "status": row["status"], "status_label": STATUS_LABELS[row["status"]],
            "counter": slot["counter_id"], "counter_name": counter.name if counter else slot["counter_id"],
            "item": slot["item_code"], "item_name": item.name,
            "date": slot["day"], "start": slot["start"], "end": end,
            "starts_at": starts_at(slot["day"], slot["start"]), "name": row["name"],
            "created_at": row["created_at"]}


def _booked(session: Session, code: str) -> Any:
    row = _row(session, code, lock=True)
    if row["status"] != "booked":
        raise Conflict(f"该预约{STATUS_LABELS[row['status']]}, 不能再更改", field="code")
    slot = session.execute(sa.select(T_SLOT).where(T_SLOT.c.id == row["slot_id"])).mappings().one()
    if starts_at(slot["day"], slot["start"]) <= clock.now():
        raise Conflict("预约的时段已经开始, 不能再取消或改约", field="code")
    return row, slot


def cancel(session: Session, code: str) -> dict[str, Any]:
    row, _ = _booked(session, code)
    session.execute(sa.update(T_APPT).where(T_APPT.c.id == row["id"]).values(status="cancelled",
                                                                            cancelled_at=clock.now()))
    _free_place(session, row["slot_id"])
    booking = view(session, code)
    _tell(session, booking, row["phone"], "cancelled", f"您{_when(booking)}的预约已取消。")
    return booking


def reschedule(session: Session, code: str, day: date, start: str) -> dict[str, Any]:
    """Move the booking: the new place is taken before the old one is given back."""
    row, slot = _booked(session, code)
    _check_slot(session, day, start)
    new_id = _slot_id(session, slot["counter_id"], slot["item_code"], day, start)
    if new_id == row["slot_id"]:
        raise InvalidInput("start", "新时段与原预约相同")
    _take_place(session, new_id)
    _free_place(session, row["slot_id"])
    session.execute(sa.update(T_APPT).where(T_APPT.c.id == row["id"]).values(slot_id=new_id))
    booking = view(session, code)
    _tell(session, booking, row["phone"], "moved", f"您的预约已改为{_when(booking)}, 预约码 {booking['code']} 不变。")
    return booking


def mark_no_shows(session: Session, now: datetime | None = None) -> int:
    """Bookings whose slot began more than the grace period ago and were never checked in."""
    now = now or clock.now()
    grace = timedelta(minutes=get_settings().appointment_grace_minutes)
    rows = session.execute(sa.select(T_APPT.c.id, T_SLOT.c.day, T_SLOT.c.start)
                           .join(T_SLOT, T_SLOT.c.id == T_APPT.c.slot_id)
                           .where(T_APPT.c.status == "booked", T_SLOT.c.day <= clock.local_date(now))).all()
    late = [r.id for r in rows if starts_at(r.day, r.start) + grace < now]
    if late:
        session.execute(sa.update(T_APPT).where(T_APPT.c.id.in_(late)).values(status="no_show", no_show_at=now))
    return len(late)
