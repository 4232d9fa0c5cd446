"""The auto_review job: apply the item's 网络自动审批 rules, approve or send to a person."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine import catalog
from engine.actors import SYSTEM
from engine.advance import fire_first_open, load_case
from engine.autoreview import Decision, check, evaluate
from engine.extensions import JOBS
from engine.guards import load_materials
from flows.effects import effect
from storage.rows import OutboxJobRow


@JOBS.register("auto_review", "网络自动审批")
def auto_review(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    with effect(engine, job) as eff:
        s = eff.session
        case = load_case(s, job["number"])
        d = catalog.compiled(s, case["item_version_id"]).definition
        if d.auto_review is None:
            eff.result["note"] = "事项未声明自动审批规则"
            return eff.result
        materials = {k: v["status"] for k, v in load_materials(s, case["id"]).items()}
        unmet = next((w for w in d.auto_review.when or [] if check(w, case, materials) is not None), None)
        if unmet is not None:  # not a case for the automatic review: a person decides
            dec = Decision(False, unmet.id, unmet.label, f"不适用网络自动审批: 条件「{unmet.label}」不满足")
            verdict = "转人工审核"
        else:
            dec = evaluate(d, case, materials)
            verdict = "全部通过, 自动批准" if dec.approved else "未通过, 转人工审核"
        data = {"auto_review": {"approved": dec.approved, "rule": dec.rule, "label": dec.label,
                                "reason": dec.reason, "job_id": job["id"]}}
        comment = f"网络自动审批: 规则「{dec.label}」({dec.rule}) 决定 — {verdict}: {dec.reason}"
        trigger = d.auto_review.approve if dec.approved else d.auto_review.manual
        fired = None
        if trigger:
            fired = fire_first_open(s, job["number"], (trigger,), SYSTEM,
                                    {"comment": comment, "data": data})
        # History records the decision with the transition it made, and only then: a decision that
        # was not applied (the case had moved on) is in the job's result, not in the case's history.
        eff.result.update(data["auto_review"], fired=fired, applied=fired is not None)
    return eff.result
