"""Item catalog endpoints: list, definition, diagram, and publishing a version (designers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from api.contract import declares, problems
from api.deps import ActorDep, SessionDep, require_role
from api.models import ItemDefinition, ItemList, Published, binary
from api.routing import Router
from engine import catalog
from engine.errors import InvalidInput
from engine.scan_validation import UploadTooLarge
from states.diagram import to_mermaid, to_svg
from states.loader import MAX_FILE_BYTES, DefinitionError

router = Router(prefix="/api/v1/items", tags=["items"])
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.get("", response_model=ItemList)
def list_items(session: SessionDep, actor: ActorDep) -> Any:
    """列出事项目录"""
    return {"items": catalog.list_items(session), "next_cursor": None}


@router.get("/{code}", response_model=ItemDefinition)
def get_item(code: str, session: SessionDep, actor: ActorDep, version: Version = None) -> Any:
    """查看事项定义 (某一版本)"""
    row = catalog.get_version(session, code, version)
    d = catalog.compiled(session, row.id).definition
    return {"code": code, "version": row.version, "content_hash": row.content_hash,
            "published_at": row.published_at, "definition": d.model_dump(by_alias=True)}


@router.get("/{code}/diagram", response_class=Response,
            responses=binary("text/plain", "image/svg+xml", description="流程图: Mermaid 源码或 SVG"))
def get_item_diagram(code: str, session: SessionDep, actor: ActorDep, version: Version = None,
                 format: Annotated[str, Query(pattern="^(mermaid|svg)$")] = "mermaid") -> Response:
    """事项流程图 (Mermaid 或 SVG)"""
    d = catalog.compiled(session, catalog.get_version(session, code, version).id).definition
    if format == "svg":
        return Response(to_svg(d), media_type="image/svg+xml")
    return Response(to_mermaid(d), media_type="text/plain; charset=utf-8")


YAML_BODY = {"requestBody": {"required": True, "content": {
    t: {"schema": {"type": "string", "minLength": 1, "description": "事项定义 (YAML, UTF-8)"}}
    for t in ("application/yaml", "text/plain")}}}


@declares(reads_body=True)
async def definition_body(request: Request, actor: ActorDep) -> bytes:
    """A designer's definition, read only after the role is checked and never beyond the size a
    definition may have (a chunked body has no Content-Length to refuse it by)."""
    require_role(actor, "designer")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise UploadTooLarge("body", "too_large", f"事项定义超过 {MAX_FILE_BYTES} 字节, 未发布")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("", status_code=201, response_model=Published, openapi_extra=YAML_BODY,
             responses={200: {"description": "内容与已有版本相同, 未新建版本", "model": Published},
                        **problems(404, 409, 413, 422, 503)})
def publish_item(raw: Annotated[bytes, Depends(definition_body)], session: SessionDep, actor: ActorDep,
                 response: Response) -> Any:
    """发布事项定义的新版本 (设计人员)

    Body: the YAML definition (``application/yaml`` or ``text/plain``). Sync: the route runs on a
    worker thread and the parse in a worker process (``catalog.parse``), never on the event loop."""
    require_role(actor, "designer")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("body", "须为 UTF-8 编码的 YAML") from exc
    try:
        item = catalog.parse(text, "body")
    except DefinitionError as err:
        errors = [{"field": f"body:{p.line}:{p.col}", "line": p.line, "col": p.col, "reason": p.message}
                  for p in err.problems]
        raise _bad(errors) from None
    row, created = catalog.publish(session, item, actor.name)
    response.status_code = 201 if created else 200
    return {"code": row.code, "version": row.version, "content_hash": row.content_hash,
            "created": created}


def _bad(errors: list[dict[str, Any]]) -> InvalidInput:
    exc = InvalidInput("body", "; ".join(f"{e['line']}:{e['col']}: {e['reason']}" for e in errors))
    exc.extra["errors"] = errors
    return exc
