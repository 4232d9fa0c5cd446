"""邮寄送达: clerks book waybills and record tracking; carriers call back with an HMAC signature."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api import models
from api.contract import declares, problems
from api.deps import ActorDep, SessionDep, require_role
from api.routing import Router
from engine.access import require_case_reader
from engine.actors import Actor
from engine.advance import case_number, load_case, require_holder
from engine.delivery import (
    CARRIERS,
    STATUSES,
    create_waybill,
    get_carrier,
    get_waybill,
    record_tracking,
    signature_ok,
    tracking_events,
    validate_recipient,
    waybills_of,
)
from engine.errors import EngineError, InvalidInput
from engine.scans import read_evidence
from storage.flow_tables import Waybill

router = Router(tags=["mail"])
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class BadSignature(EngineError):
    status, type, title = 401, "/problems/bad-signature", "签名无效"
    help = "寄递企业的回调没有带有效的签名 (HMAC), 或时间戳过期。请核对与本平台约定的密钥与签名方式。"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipient(_Body):
    """Checked again by the engine (engine.delivery.validate_recipient), with the same rules."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"\S")]
    phone: Annotated[str, StringConstraints(pattern=r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$")] = Field(
        description="11 位手机号或带区号的固定电话")
    address: Annotated[str, StringConstraints(min_length=6, max_length=200,
                                              pattern="(省|自治区|市|区|县|旗|镇|乡|街道)")] = Field(
        description="含省/市/区(县)的详细地址")
    postal_code: Annotated[str, StringConstraints(pattern=r"^([0-9]{6})?$")] | None = None


class WaybillCreate(_Body):
    recipient: Recipient
    contents: Short = ""
    # The carriers registered in engine.delivery (the document lists them as the allowed values).
    carrier: Short = Field(default="counter", json_schema_extra={"enum": list(CARRIERS)})


class TrackingUpdate(_Body):
    status: Literal["in_transit", "delivered", "returned"]
    location: Short = ""
    note: Short = ""


class CarrierEvent(_Body):
    waybill: Annotated[str, StringConstraints(max_length=40)]
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    status: Literal["in_transit", "delivered", "returned"]
    at: datetime | None = None
    location: Short = ""
    note: Short = ""


def waybill_view(session: Any, w: Waybill) -> dict[str, Any]:
    events = tracking_events(session, w.id)
    return {"number": w.number, "carrier": w.carrier, "status": w.status,
            "status_label": STATUSES[w.status], "sender_counter": w.sender_counter_id,
            "recipient": w.recipient, "contents": w.contents, "created_at": w.created_at,
            "delivered_at": w.delivered_at, "label_pdf": f"/api/v1/waybills/{w.number}/label.pdf",
            "events": [{"at": e.at, "status": e.status, "location": e.location, "note": e.note,
                        "source": e.source} for e in events]}


def _visible(session: Any, w: Waybill, actor: Actor) -> None:
    require_case_reader(session, actor, load_case(session, case_number(session, w.case_id)))


@router.post("/api/v1/cases/{number}/waybills", status_code=201, response_model=models.Waybill,
             responses=problems(409, 503))
def book_waybill(number: str, body: WaybillCreate, session: SessionDep, actor: ActorDep) -> Any:

    """寄递下单

    The holding counter books a shipment of the result (e.g. when the applicant's address was unusable)."""
    require_role(actor, "clerk")
    case = load_case(session, number)
    item = require_holder(session, case, actor)
    recipient = validate_recipient(body.recipient.model_dump(exclude_none=True))
    get_carrier(body.carrier)
    contents = body.contents or f"{item.definition.certificate_name or item.definition.name} 1 份 (办件 {number})"
    assert actor.counter_id is not None
    w = create_waybill(session, case, actor.counter_id, recipient, contents, carrier=body.carrier)
    return waybill_view(session, w)


@router.get("/api/v1/cases/{number}/waybills", response_model=models.WaybillList)
def list_waybills(number: str, session: SessionDep, actor: ActorDep) -> Any:
    """列出办件的运单"""
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    rows = waybills_of(session, case["id"])
    return {"items": [waybill_view(session, w) for w in rows], "next_cursor": None}


@router.get("/api/v1/waybills/{number}/label.pdf", response_class=Response,
            responses={**models.binary("application/pdf", description="运单面单 PDF"), **problems(503)})
def get_waybill_label(number: str, session: SessionDep, actor: ActorDep) -> Response:
    """下载运单面单 PDF"""
    w = get_waybill(session, number)
    _visible(session, w, actor)
    if not w.bucket or not w.object_key:
        raise InvalidInput("number", "该运单没有面单")
    return Response(b"".join(read_evidence(w.bucket, w.object_key)), media_type="application/pdf")


@router.post("/api/v1/waybills/{number}/events", response_model=models.TrackingRecorded, responses=problems(409))
def record_tracking_by_hand(number: str, body: TrackingUpdate, session: SessionDep, actor: ActorDep,
                   key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=64)] = None) -> Any:

    """登记物流状态 (窗口)

    A clerk records tracking by hand (e.g. the applicant signed for it at the counter)."""
    require_role(actor, "clerk")
    w = get_waybill(session, number)
    _visible(session, w, actor)
    event_id = key or f"clerk:{actor.id}:{datetime.now().timestamp()}"
    out = record_tracking(session, w, body.status, event_id, source="clerk",
                          location=body.location, note=body.note or f"{actor.name} 登记")
    return out | {"waybill_view": waybill_view(session, w)}


# The callback's body is its credential (signed): one tracking event, far below this.
router.allow_larger(r"/api/v1/carriers/[^/]+/callback", lambda: 64 * 1024, uncredentialed=True)


@declares(reads_body=True)
async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/api/v1/carriers/{carrier}/callback", response_model=models.TrackingRecorded,
             responses=problems(401, 409))
def carrier_callback(
    carrier: str, session: SessionDep, raw: Annotated[bytes, Depends(raw_body)],
    timestamp: Annotated[str | None, Header(alias="X-Tongban-Timestamp")] = None,
    signature: Annotated[str | None, Header(alias="X-Tongban-Signature")] = None,
) -> Any:

    """承运方物流回调 (签名)

    Carrier tracking push. Signed: ``X-Tongban-Signature: sha256=HMAC(secret, ts + "." + body)``.

    The signature is checked on the raw bytes before anything is parsed or written."""
    if not signature_ok(raw, timestamp, signature):
        raise BadSignature("回调签名无效或时间戳超出允许范围, 已拒绝, 未做任何更改")
    get_carrier(carrier)
    try:
        event = CarrierEvent.model_validate(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("body", f"回调内容无效: {exc}") from None
    w = get_waybill(session, event.waybill)
    if w.carrier != carrier:
        raise InvalidInput("waybill", f"运单 {w.number} 不属于承运方 {carrier}")
    return record_tracking(session, w, event.status, event.event_id, source="carrier",
                           at=event.at, location=event.location, note=event.note)
