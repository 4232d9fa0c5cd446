"""邮寄送达: waybills, carriers, tracking, and completing the case once delivery is confirmed."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.install_secrets import install_secret
from core.settings import get_settings
from engine import scans
from engine.actors import SYSTEM
from engine.advance import fire_first_open
from engine.errors import Conflict, InvalidInput, NotFound
from engine.pdf import waybill_pdf
from storage.flow_tables import TrackingEvent, Waybill
from storage.rows import CaseRow
from storage.tables import T_CASE, Counter

MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
LANDLINE = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}$")
POSTCODE = re.compile(r"^[0-9]{6}$")
PLACE = re.compile(r"(省|自治区|市|区|县|旗|镇|乡|街道)")
STATUSES = {"created": "已下单", "in_transit": "运输中", "delivered": "已签收", "returned": "已退回"}
# Triggers that complete a case once its result has been received (first open wins).
DELIVERED_TRIGGERS = ("deliver", "hand_over")


def validate_recipient(raw: Any, field: str = "recipient") -> dict[str, str]:
    """Name, a Chinese mobile or landline number, a full postal address, optional postcode."""
    if not isinstance(raw, dict):
        raise InvalidInput(field, "须为 {name, phone, address, postal_code}")
    # Lengths are judged on the text as sent (the API's schema says the same), stored trimmed.
    name, address = str(raw.get("name") or ""), str(raw.get("address") or "")
    phone = re.sub(r"[\s]", "", str(raw.get("phone") or ""))
    postcode = str(raw.get("postal_code") or "").strip()
    if not 1 <= len(name) <= 50 or not name.strip():
        raise InvalidInput(f"{field}.name", "收件人姓名须为 1–50 个字符")
    if not (MOBILE.match(phone) or LANDLINE.match(phone)):
        raise InvalidInput(f"{field}.phone", "须为 11 位手机号或带区号的固定电话")
    name, address = name.strip(), address.strip()
    if not 6 <= len(str(raw.get("address") or "")) <= 200 or not PLACE.search(address):
        raise InvalidInput(f"{field}.address", "须为含省/市/区(县)的详细地址, 6–200 个字符")
    if postcode and not POSTCODE.match(postcode):
        raise InvalidInput(f"{field}.postal_code", "邮政编码须为 6 位数字")
    out = {"name": name, "phone": phone, "address": address}
    if postcode:
        out["postal_code"] = postcode
    return out


@dataclass(frozen=True)
class Booking:
    number: str
    label_pdf: bytes


class Carrier(Protocol):
    """A mail carrier: books a shipment and returns its tracking number and printable label."""

    name: str

    def book(self, sender: Counter, recipient: dict[str, str], contents: str, ref: str) -> Booking: ...


class CounterPrintCarrier:
    """The built-in carrier: the counter prints the waybill itself (real carriers' APIs are offline)."""

    name = "counter"
    label = "窗口自助寄递"

    def book(self, sender: Counter, recipient: dict[str, str], contents: str, ref: str) -> Booking:
        digest = hashlib.sha256(ref.encode()).hexdigest()[:10].upper()
        number = f"TB{sender.region_code}{digest}"
        fields = [("寄件窗口", sender.name), ("收件人", recipient["name"]),
                  ("电话", recipient["phone"]), ("地址", recipient["address"]),
                  ("邮编", recipient.get("postal_code", "")), ("内件", contents)]
        return Booking(number, waybill_pdf(fields, number, self.label))


CARRIERS: dict[str, Carrier] = {"counter": CounterPrintCarrier()}


def get_carrier(name: str) -> Carrier:
    if name not in CARRIERS:
        raise InvalidInput("carrier", f"未知的承运方 '{name}' (可用: {', '.join(CARRIERS)})")
    return CARRIERS[name]


def create_waybill(session: Session, case: CaseRow, sender_counter_id: str,
                   recipient: dict[str, str], contents: str, *, job_id: str | None = None,
                   carrier: str = "counter", ref: str | None = None) -> Waybill:
    sender = session.get(Counter, sender_counter_id)
    if sender is None:
        raise NotFound(f"窗口 {sender_counter_id} 不存在")
    booking = get_carrier(carrier).book(sender, recipient, contents,
                                        ref or job_id or f"{case['number']}:{now().isoformat()}")
    stored = scans.store_evidence(session, case["number"], "waybill", booking.label_pdf, "application/pdf",
                                  SYSTEM, meta={"waybill": booking.number})
    row = Waybill(number=booking.number, case_id=case["id"], job_id=job_id, carrier=carrier,
                  sender_counter_id=sender.id, recipient=recipient, contents=contents,
                  created_at=now(), bucket=stored.bucket, object_key=stored.key)
    session.add(row)
    session.flush()
    return row


def get_waybill(session: Session, number: str) -> Waybill:
    row = session.execute(sa.select(Waybill).where(Waybill.number == number)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"运单 {number} 不存在")
    return row


def waybills_of(session: Session, case_id: int) -> list[Waybill]:
    return list(session.execute(sa.select(Waybill).where(Waybill.case_id == case_id)
                                .order_by(Waybill.id)).scalars())


def tracking_events(session: Session, waybill_id: int) -> list[TrackingEvent]:
    return list(session.execute(sa.select(TrackingEvent).where(TrackingEvent.waybill_id == waybill_id)
                                .order_by(TrackingEvent.at, TrackingEvent.id)).scalars())


def record_tracking(session: Session, waybill: Waybill, status: str, event_id: str, *,
                    source: str, at: datetime | None = None, location: str = "",
                    note: str = "") -> dict[str, Any]:
    """Append a tracking event (a replayed event id is a no-op); delivery completes the case."""
    if status not in STATUSES or status == "created":
        raise InvalidInput("status", f"须为 {' / '.join(s for s in STATUSES if s != 'created')}")
    if waybill.status in ("delivered", "returned") and status != waybill.status:
        raise Conflict(f"运单已{STATUSES[waybill.status]}, 不能再更新为{STATUSES[status]}",
                       field="status")
    seen = session.execute(sa.select(TrackingEvent.id).where(
        TrackingEvent.waybill_id == waybill.id, TrackingEvent.event_id == event_id)).first()
    if seen is not None:
        return {"waybill": waybill.number, "status": waybill.status, "duplicate": True}
    session.add(TrackingEvent(waybill_id=waybill.id, event_id=event_id, at=at or now(),
                              status=status, location=location, note=note, source=source))
    waybill.status = status
    fired = None
    if status == "delivered":
        waybill.delivered_at = at or now()
        session.add(waybill)
        session.flush()
        number = session.execute(sa.select(T_CASE.c.number).where(
            T_CASE.c.id == waybill.case_id)).scalar_one()
        fired = fire_first_open(session, number, DELIVERED_TRIGGERS, SYSTEM, {
            "comment": f"邮件已签收 (运单 {waybill.number})",
            "data": {"waybill": waybill.number, "event_id": event_id}})
    session.add(waybill)
    session.flush()
    return {"waybill": waybill.number, "status": status, "duplicate": False, "fired": fired}


def sign(body: bytes, timestamp: str, secret: str | None = None) -> str:
    key = secret.encode() if secret else install_secret("carrier-secret", get_settings().carrier_secret)
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_ok(body: bytes, timestamp: str | None, signature: str | None,
                 at: datetime | None = None) -> bool:
    """HMAC-SHA256 over ``<timestamp>.<body>``, within the allowed clock skew."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    skew = abs((at or now()).timestamp() - int(timestamp))
    if skew > get_settings().carrier_skew_seconds:
        return False
    return hmac.compare_digest(sign(body, timestamp), signature)
