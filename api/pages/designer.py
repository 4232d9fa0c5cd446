"""The designer view: the catalog, each item's versions and diagram, and checking a pasted definition."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.pages.diagram import highlighted_svg
from api.routing import Router
from engine import catalog
from states.compiler import compile_item
from states.loader import DefinitionError

router = Router(pages=True)
MAX_SOURCE = 200_000


@router.get("/ui/designer", response_class=HTMLResponse)
def designer_home(request: Request, session: SessionDep) -> Response:
    actor = web.require_actor(request, session)
    rows = catalog.versions(session)
    catalog_: dict[str, dict] = {}
    for r in rows:
        catalog_.setdefault(r.code, {"code": r.code, "name": r.name, "versions": []})["versions"].append(r)
    return web.render(request, "designer.html", actor, catalog=list(catalog_.values()), source="",
                      problems=None, preview=None)


@router.get("/ui/designer/items/{code}", response_class=HTMLResponse)
def designer_item(code: str, request: Request, session: SessionDep,
                  version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    actor = web.require_actor(request, session)
    row = catalog.get_version(session, code, version)
    versions = [v.version for v in catalog.versions(session, code)]
    item = catalog.compiled(session, row.id)
    return web.render(request, "designer_item.html", actor, row=row, d=item.definition, versions=versions,
                      svg_uri=_svg_uri(highlighted_svg(item, row.content_hash, ())))


@router.post("/ui/designer/check", response_class=HTMLResponse)
def designer_check(request: Request, session: SessionDep, csrf: Annotated[str, Form()],
                   source: Annotated[str, Form()] = "") -> Response:
    """Validate a pasted definition; nothing is published (publishing stays with the API/CLI)."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    problems, preview, status = [], None, 200
    if len(source) > MAX_SOURCE:
        problems, status = [{"line": 1, "col": 1, "message": f"定义过大: 超过 {MAX_SOURCE} 字符"}], 422
    else:
        try:
            item = catalog.parse(source, "粘贴的定义")
            compiled = compile_item(item.definition)
            preview = {"d": item.definition, "svg_uri": _svg_uri(highlighted_svg(compiled, item.content_hash, ()))}
        except DefinitionError as err:
            problems = [{"line": p.line, "col": p.col, "message": p.message} for p in err.problems]
            status = 422
    return web.render(request, "designer.html", actor, status_code=status, catalog=None, source=source,
                      problems=problems, preview=preview)


def _svg_uri(svg: str) -> str:
    """As an <img> data URI: SVG shown this way cannot run scripts in the page."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
