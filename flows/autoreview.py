"""The auto_review job: apply the item's 网络自动审批 rules, approve or send to a person.

The rules are evaluated in a worker process with a time budget (``engine.autoreview.
decide_bounded``), before the job's write transaction opens: on SQLite that transaction holds
the one writer lock, which no evaluation should keep. The transaction re-reads the case and
evaluates again only if the case changed in between.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine import catalog
from engine.actors import SYSTEM
from engine.advance import fire_first_open, load_case
from engine.autoreview import Decision, decide_bounded
from engine.extensions import JOBS
from engine.guards import load_materials
from flows.effects import effect
from states.schema import AutoReview
from storage.db import session_scope
from storage.rows import CaseRow, OutboxJobRow


def _inputs(s: Session, number: str) -> tuple[CaseRow, AutoReview | None, dict[str, str]]:
    case = load_case(s, number)
    ar = catalog.compiled(s, case["item_version_id"]).definition.auto_review
    return case, ar, {k: v["status"] for k, v in load_materials(s, case["id"]).items()}


@JOBS.register("auto_review", "网络自动审批")
def auto_review(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    with session_scope(engine, readonly=True) as s:
        seen, ar, materials = _inputs(s, job["number"])
    decided: tuple[Decision, str] | None = decide_bounded(ar, seen, materials) if ar is not None else None
    with effect(engine, job) as eff:
        s = eff.session
        case, ar, materials = _inputs(s, job["number"])
        if ar is None:
            eff.result["note"] = "事项未声明自动审批规则"
            return eff.result
        if decided is None or case["version"] != seen["version"]:  # moved meanwhile: decide on what is
            decided = decide_bounded(ar, case, materials)
        dec, verdict = decided
        data = {"auto_review": {"approved": dec.approved, "rule": dec.rule, "label": dec.label,
                                "reason": dec.reason, "job_id": job["id"]}}
        comment = f"网络自动审批: 规则「{dec.label}」({dec.rule}) 决定 — {verdict}: {dec.reason}"
        trigger = ar.approve if dec.approved else ar.manual
        fired = None
        if trigger:
            fired = fire_first_open(s, job["number"], (trigger,), SYSTEM,
                                    {"comment": comment, "data": data})
        # History records the decision with the transition it made, and only then: a decision that
        # was not applied (the case had moved on) is in the job's result, not in the case's history.
        eff.result.update(data["auto_review"], fired=fired, applied=fired is not None)
    return eff.result
