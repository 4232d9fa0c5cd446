"""生成邮寄运单: book the shipment of a case's result to the applicant's address."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.clock import now
from engine import catalog
from engine.advance import load_case
from engine.delivery import create_waybill, validate_recipient
from engine.errors import InvalidInput
from engine.extensions import JOBS
from flows.effects import effect
from storage.flow_tables import Notification, Waybill
from storage.rows import OutboxJobRow


@JOBS.register("create_waybill", "生成邮寄运单")
def create_waybill_job(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    with effect(engine, job) as eff:
        s = eff.session
        case = load_case(s, job["number"])
        if s.execute(sa.select(Waybill.number).where(Waybill.job_id == job["id"])).first():
            return eff.result
        d = catalog.compiled(s, case["item_version_id"]).definition
        a = case["applicant"]
        sender = job["counter_id"] or case["competent_counter_id"]
        try:
            recipient = validate_recipient({"name": a.get("name"), "phone": a.get("phone"),
                                            "address": a.get("address")}, "applicant")
        except InvalidInput as err:
            # No usable address: the counter books the shipment by hand (POST …/waybills).
            s.add(Notification(dedupe_key=f"job:{job['id']}", case_id=case["id"],
                               audience="counter", kind="waybill_needed", created_at=now(),
                               message=f"办件 {case['number']} 待寄递, 但申请人地址无效: {err.detail}"))
            eff.result["waiting"] = err.detail
            return eff.result
        contents = f"{d.certificate_name or d.name} 1 份 (办件 {case['number']})"
        row = create_waybill(s, case, sender, recipient, contents, job_id=job["id"], ref=job["id"])
        eff.result.update(waybill=row.number, carrier=row.carrier)
    return eff.result
