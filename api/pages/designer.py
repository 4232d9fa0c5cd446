"""The designer view: the catalog with the cases running on each version, each item's versions and
diagram, checking a pasted definition (line numbers, "did you mean", the difference from the
published version), and publishing it (role designer)."""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.deps import SessionDep
from api.pages import web
from api.pages.diagram import highlighted_svg
from api.routing import Router
from engine import catalog, designer_help, labels
from engine.actors import Actor
from engine.errors import EngineError, Forbidden
from engine.extensions import GUARDS
from states.compiler import compile_item
from states.loader import DefinitionError
from states.vocabulary import ACTOR_ROLES

router = Router(pages=True)
MAX_SOURCE = 200_000
CODE = re.compile(r"^code:\s*[\"']?([A-Za-z0-9_]+)", re.M)


@router.get("/ui/designer", response_class=HTMLResponse)
def designer_home(request: Request, session: SessionDep) -> Response:
    actor = web.require_actor(request, session)
    return _home(request, session, actor, source="", problems=None, preview=None)


def _home(request: Request, session: Session, actor: Actor, status_code: int = 200, **ctx: Any) -> Response:
    rows = catalog.versions(session)
    running = designer_help.running_by_version(session)
    catalog_: dict[str, dict] = {}
    for r in rows:
        entry = catalog_.setdefault(r.code, {"code": r.code, "name": r.name, "versions": []})
        entry["versions"].append({"version": r.version, "published_at": r.published_at,
                                  "published_by": r.published_by, "running": running.get((r.code, r.version), 0)})
    ctx.setdefault("diff", None)
    return web.render(request, "designer.html", actor, status_code=status_code, catalog=list(catalog_.values()),
                      may_publish="designer" in actor.roles, **ctx)


# Who published a version: a designer by name, or the catalog loaded by the demo or the command line.
PUBLISHERS = {"catalog": "事项目录 (演示数据导入)", "cli": "命令行发布"}


@router.get("/ui/designer/items/{code}", response_class=HTMLResponse)
def designer_item(code: str, request: Request, session: SessionDep,
                  version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    actor = web.require_actor(request, session)
    row = catalog.get_version(session, code, version)
    versions = [v.version for v in catalog.versions(session, code)]
    item = catalog.compiled(session, row.id)
    d = item.definition
    # The table names states, roles and conditions as people read them; the source below has the ids.
    states = {s.id: s.label for s in d.states}
    states.update({name: ref.state.label for name, ref in item.table.items()})
    return web.render(request, "designer_item.html", actor, row=row, d=d, versions=versions,
                      state_labels=states, actor_roles=ACTOR_ROLES, guard_labels=GUARDS.labels(),
                      publisher=PUBLISHERS.get(row.published_by, row.published_by),
                      running=designer_help.running_by_version(session, code),
                      svg_uri=_svg_uri(highlighted_svg(item, row.content_hash, ())))


def _checked(session: Session, source: str) -> tuple[Any, list[dict[str, Any]], dict[str, Any] | None]:
    """The parsed item (or None), every problem (each with a "did you mean" where a close name
    exists), and the preview; beside it the difference from the published version of the code."""
    if len(source) > MAX_SOURCE:
        return None, [{"line": 1, "col": 1, "message": f"定义过大: 超过 {MAX_SOURCE} 字符", "hint": None}], None
    try:
        item = catalog.parse(source, "粘贴的定义")
    except DefinitionError as err:
        known = designer_help.names_in(source)
        found = [(p.line, p.col, labels.checker_message(p.message)) for p in err.problems]
        # The schema stops the checker before its own rules: the names used but not declared too.
        at = {(line, col) for line, col, _ in found}  # the checker's own report of a name wins
        found += [p for p in designer_help.reference_problems(source) if p[:2] not in at]
        return None, [{"line": line, "col": col, "message": message, "hint": designer_help.did_you_mean(message, known)}
                      for line, col, message in sorted(found)], None
    compiled = compile_item(item.definition)
    return item, [], {"d": item.definition, "svg_uri": _svg_uri(highlighted_svg(compiled, item.content_hash, ()))}


def _diff(session: Session, item: Any, source: str) -> dict[str, Any] | None:
    code = item.definition.code if item is not None else (m.group(1) if (m := CODE.search(source)) else None)
    published = designer_help.published_source(session, code) if code else None
    if published is None:
        return None
    version, old = published
    return {"version": version, "lines": designer_help.diff_lines(old, source)}


@router.post("/ui/designer/check", response_class=HTMLResponse)
def designer_check(request: Request, session: SessionDep, csrf: Annotated[str, Form()],
                   source: Annotated[str, Form()] = "") -> Response:
    """Check a pasted definition: every problem with its line, the diagram, the difference from
    the published version. Nothing is stored (publishing is its own button)."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    item, problems, preview = _checked(session, source)
    return _home(request, session, actor, 422 if problems else 200, source=source, problems=problems,
                 preview=preview, diff=_diff(session, item, source))


@router.post("/ui/designer/publish", response_class=HTMLResponse)
def designer_publish(request: Request, session: SessionDep, csrf: Annotated[str, Form()],
                     source: Annotated[str, Form()] = "",
                     form_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Publish a checked definition as a new version (role designer); running cases keep theirs."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    if "designer" not in actor.roles:
        raise Forbidden("发布事项须由流程设计人员办理", missing=["role:designer"])
    if again := web.sent_before(session, actor.id, form_token):
        return again
    item, problems, preview = _checked(session, source)
    if item is None:
        return _home(request, session, actor, 422, source=source, problems=problems, preview=None,
                     diff=_diff(session, None, source))
    try:
        row, created = catalog.publish(session, item, actor.name)
    except EngineError as exc:
        session.rollback()
        return _home(request, session, actor, exc.status, source=source, preview=preview,
                     problems=[{"line": 1, "col": 1, "message": exc.detail.split(": ", 1)[-1], "hint": None}],
                     diff=_diff(session, item, source))
    url = f"/ui/designer/items/{row.code}?version={row.version}&published={'new' if created else 'same'}"
    return web.done(session, actor.id, form_token, url)


def _svg_uri(svg: str) -> str:
    """As an <img> data URI: SVG shown this way cannot run scripts in the page."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
