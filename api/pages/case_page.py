"""The case page: applicant, materials and scans, history, diagram, and the actions open now.

Rendered by the workbench's routes and, after a failed upload, by the scan routes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import Session

from api.pages import web
from engine import assignment, catalog, dashboard, directory, documents_read, labels, lifecycle, scans, views
from engine.access import require_case_reader
from engine.actors import Actor
from engine.advance import companion_step, load_case
from engine.errors import EngineError
from storage.rows import CaseRow


def visible_case(session: Session, actor: Actor, number: str) -> CaseRow:
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    return case


def render(request: Request, session: Session, actor: Actor, case: CaseRow,
           status_code: int = 200, error: str | None = None, done: str | None = None) -> Response:
    view = views.case_view(session, case, actor)
    events = views.history(session, case["id"])
    item = catalog.compiled(session, case["item_version_id"])
    counters = directory.counter_names(session, [*case["parties"].values(), *view["holders"]])
    done_label = next((t.label for t in item.definition.transitions if t.trigger == done), None)
    if done_label is None and done in DONE_LABELS:
        done_label = DONE_LABELS[done]
    # The video step opens from the holding counter when the state declares one.
    video = view["state"]["video"] if actor.counter_id in view["holders"] else None
    clerks = directory.clerk_names(session, [*case["assignees"].values(), case["companion_id"]])
    # What this clerk may do about who works on the case: claim the step here, or give it back.
    step = assignment.current_step(item, case, actor.counter_id) if actor.counter_id else None
    claimable = (step is not None and not companion_step(item, step) and actor.counter_id in view["holders"]
                 and case["assignees"].get(actor.counter_id) is None
                 and bool(actor.roles & assignment.step_roles(item, step)))
    claimed_by_me = actor.counter_id is not None and case["assignees"].get(actor.counter_id) == actor.id
    may_extend = lifecycle.can_extend(item, case, actor) is None
    prefect_url = dashboard.prefect_runs_url(case["number"])  # None unless a Prefect UI is configured
    return web.render(request, "case.html", actor, status_code=status_code, v=view,
                      history=views.history_lines(session, item, case, events), counters=counters, clerks=clerks,
                      error=error, done=done_label, video=video, tone=views.state_tone(item, case["state"]),
                      pages=pages_by_material(session, case["number"], actor),
                      prefect_url=prefect_url,
                      claimable=claimable, claimed_by_me=claimed_by_me, may_extend=may_extend,
                      extension_days=item.definition.limits.extension_days,
                      documents=documents_read.with_evidence(session, case["number"], actor),
                      results=views.case_results(session, case, events),
                      actions=views.page_actions(session, item, case, actor, view["triggers"]),
                      hand_over=hand_over_choices(session, item, case, actor, view["holders"], counters),
                      supplement_triggers=supplement_triggers(item))


DONE_LABELS = {"claim": "认领", "release": "释放认领", "assign": "转交", "extension": "延期", "material": "更新材料",
               "upload": "上传扫描件",
               "withdraw_page": "撤回扫描件", "reorder_pages": "调整扫描件顺序"}


def hand_over_choices(session: Session, item: Any, case: CaseRow, actor: Actor, holders: list[str],
                      counters: dict[str, str]) -> list[dict[str, Any]]:
    """Whom this clerk may hand the case's part at each counter to: the claimant or the companion
    their own part, a supervisor (改派) anyone's. The engine checks again when it is sent."""
    if item.table[case["state"]].state.final:
        return []
    supervisor = "supervisor" in actor.roles
    out = []
    for counter_id in holders:
        step = assignment.current_step(item, case, counter_id)
        companion = step is None or companion_step(item, step)
        current = case["companion_id"] if companion else case["assignees"].get(counter_id)
        if not supervisor and (actor.counter_id != counter_id or current != actor.id):
            continue
        roles = {"clerk"} if companion else assignment.step_roles(item, step or "")
        people = [c for c in views.colleagues(session, counter_id, roles) if c["id"] != current]
        if people:
            out.append({"counter_id": counter_id, "counter": counters.get(counter_id, "本窗口"),
                        "what": "陪伴申请人" if companion else item.table[step or case["state"]].state.label,
                        "people": people, "current": current})
    return out


def supplement_triggers(item: Any) -> set[str]:
    """Triggers into a 补正 state (status 6): their form ticks each material and asks a reason."""
    return {t.trigger for t in item.definition.transitions if item.table[t.dest].state.status == 6}


def render_case(request: Request, session: Session, actor: Actor, number: str, status_code: int,
                error: str | EngineError) -> Response:
    """The case page again, with what went wrong (after the failed write was rolled back)."""
    if isinstance(error, EngineError):
        error = labels.engine_message(error.detail, error.extra.get("errors"))
    return render(request, session, actor, load_case(session, number), status_code, error)


def pages_by_material(session: Session, number: str, actor: Actor) -> dict[str, list[dict[str, Any]]] | None:
    """Active pages per material."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in scans.list_pages(session, number, actor):
        out[p["material_id"]].append({"id": p["id"], "page_no": p["page_no"],
                                      "thumbnail": bool(p.get("thumbnail_key"))})
    return out
