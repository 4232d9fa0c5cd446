"""办件进度查询: what an applicant sees with a case number and its query code (no login)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine import catalog, lifecycle
from engine.errors import NotFound
from engine.intake import hash_query_code
from engine.views import state_ref, status_ref
from storage.tables import T_CASE, T_HIST


def progress(session: Session, number: str, code: str) -> dict[str, Any]:
    """Status and dates only; a wrong code looks exactly like an unknown number."""
    row = session.execute(sa.select(T_CASE).where(T_CASE.c.number == number)).mappings().first()
    if row is None or row["query_code_hash"] != hash_query_code(number, code):
        raise NotFound("未找到该办件, 请核对办件编号和查询码")
    item = catalog.compiled(session, row["item_version_id"])
    steps = session.execute(
        sa.select(T_HIST.c.at, T_HIST.c.to_state)
        .where(T_HIST.c.case_id == row["id"], T_HIST.c.kind.in_(["intake", "transition"]))
        .order_by(T_HIST.c.seq)).mappings()
    return {
        "number": number,
        "item_name": item.definition.name,
        "status": status_ref(row["status_code"]),
        "state": state_ref(item, row["state"]),
        "received_at": row["created_at"],
        "promised_due": row["promised_due"],
        "provisional": bool(row["deadline_provisional"]),
        "finished_at": row["finished_at"],
        # 撤回 is open to the applicant until the decision (as the engine itself would judge it).
        "can_withdraw": lifecycle.applicant_may_withdraw(item, row),  # type: ignore[arg-type]
        "steps": [{"at": s["at"], "label": item.table[s["to_state"]].state.label if s["to_state"] in item.table
                   else s["to_state"]} for s in steps],
    }
