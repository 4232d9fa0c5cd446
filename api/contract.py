"""The OpenAPI document as a contract: what each operation can answer, documented where it is true.

Every API error is RFC 9457 problem details (``api.problems.problem``); this module gives it one
schema (``Problem``) and documents, for each operation, every status it can answer. Most
statuses follow from what the route takes — read off its FastAPI dependant, so a new route is
documented by being written — and the few that depend on what the engine does there (409, 503,
429) are declared beside the route with ``problems(…)``:

    @router.post("/{number}/triggers/{trigger}", responses=problems(409))

Also here: operationIds from the endpoint's name (``fire_trigger`` → ``fireTrigger``), summaries
from the first line of its docstring (zh-CN), the bearer security scheme, and required headers
(``If-Match``) marked required although the route answers their absence itself (428, not 422).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from api.problems import MEDIA_TYPE

F = TypeVar("F", bound=Callable[..., Any])
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Every status an API operation can answer as problem details, with its meaning in the docs.
STATUS_TEXT: dict[int, str] = {
    400: "请求无效",
    401: "未认证: 缺少或无效的 Bearer 令牌",
    403: "无权操作: 缺少角色、不是持有窗口或未被指派 (missing 列出所缺)",
    404: "未找到: 对象不存在或调用者无权得知其存在",
    409: "冲突: 当前状态不允许此操作 (open_triggers 列出可执行的操作) 或前置条件未满足",
    412: "办件已被他人更新: If-Match 与当前版本不符 (current_version 给出当前版本)",
    413: "请求体过大: 超出该类接口的字节上限, 连接随后关闭",
    415: "不支持的媒体类型",
    422: "输入无效: errors 逐项给出字段与原因",
    428: "缺少 If-Match: 修改办件须带其 ETag",
    429: "请求过于频繁: 按 Retry-After 秒后重试",
    503: "服务暂不可用: 存储或数据库暂时无法访问, 按 Retry-After 秒后重试",
}
RETRY_AFTER = {"Retry-After": {"description": "建议的重试等待秒数", "schema": {"type": "integer"}}}


class FieldError(BaseModel):
    field: str = Field(description="出错的字段, 以点分隔的路径 (如 applicant.phone), 或 body")
    reason: str = Field(description="原因 (中文)")


class Problem(BaseModel):
    """RFC 9457 problem details, with the product's extra members."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="问题类型 URI (相对于本服务), 如 /problems/invalid-input: 打开即是该问题的说明页; "
                                  "about:blank 表示仅由状态码说明")
    title: str = Field(description="问题的简短说明 (中文)")
    status: int = Field(description="HTTP 状态码")
    detail: str = Field(description="本次出错的具体说明 (中文)")
    instance: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="422: 每个无效字段及原因")
    open_triggers: list[str] | None = Field(default=None, description="409: 当前状态下可执行的操作")
    missing: list[str] | None = Field(default=None, description="403/409: 所缺的角色、指派或条件")
    current_version: int | None = Field(default=None, description="412: 办件的当前版本")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the statuses a route answers beyond what its signature implies."""
    return {status: _problem_response(status) for status in statuses}


ETAG = {"ETag": {"description": '办件的 ETag "版本号-摘要", 如 "7-9f86d081884c7d65": 修改时放入 If-Match '
                          '(只比较版本号), 轮询时放入 If-None-Match', "schema": {"type": "string"}}}


def not_modified(headers: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entry of a read that answers 304 to a matching If-None-Match."""
    return {304: {"description": "未改变: If-None-Match 与当前 ETag 相同 (无正文)", "headers": headers}}
LOCATION = {"Location": {"description": "新建对象的地址 (GET 可取)", "schema": {"type": "string"}}}


def answer_headers(status: int, *headers: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entry documenting the headers a success answer carries (ETag, Location)."""
    merged: dict[str, Any] = {}
    for h in headers:
        merged |= h
    return {status: {"headers": merged}}


def _problem_response(status: int) -> dict[str, Any]:
    out: dict[str, Any] = {"description": STATUS_TEXT[status],
                           "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}}}
    if status in (429, 503):
        out["headers"] = dict(RETRY_AFTER)
    if status == 429:
        out["headers"]["RateLimit"] = {"description": '剩余配额与重置秒数, 如 "rate-limited";r=0;t=60',
                                       "schema": {"type": "string"}}
    if status == 401:
        out["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
    return out


def declares(*statuses: int, authenticates: bool = False, reads_body: bool = False,
             requires_headers: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Marks a dependency with what every route using it can answer: statuses it raises,
    whether it authenticates (401/403), reads the raw body (413/422) or requires a header that
    FastAPI sees as optional because the dependency answers its absence itself (428)."""

    def mark(fn: F) -> F:
        fn.__contract__ = Declared(frozenset(statuses), authenticates, reads_body,  # type: ignore[attr-defined]
                                   requires_headers)
        return fn

    return mark


@dataclass(frozen=True)
class Declared:
    statuses: frozenset[int]
    authenticates: bool
    reads_body: bool
    requires_headers: tuple[str, ...]


def operation_id(route: APIRoute) -> str:
    """``fire_trigger`` → ``fireTrigger``: the name a person would write."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def document_route(route: APIRoute) -> None:
    """Adds every status the route can answer by what it takes to ``route.responses``."""
    for status in sorted(implied_statuses(route)):
        route.responses.setdefault(status, _problem_response(status))


def implied_statuses(route: APIRoute) -> set[int]:
    dependant = route.dependant
    declared = [d for d in (_declared(x.call) for x in walk(dependant)) if d is not None]
    params = [p for d in walk(dependant)
              for p in (*d.path_params, *d.query_params, *d.header_params, *d.cookie_params)]
    raw_body = any(d.reads_body for d in declared)
    out: set[int] = set()
    if route.body_field is not None or params or raw_body:
        out.add(422)
    if route.body_field is not None or raw_body:
        out.add(413)
    if any(d.authenticates for d in declared):
        out |= {401, 403}
    if dependant.path_params:
        out.add(404)
    for d in declared:
        out |= d.statuses
    return out


def _declared(call: Any) -> Declared | None:
    return getattr(call, "__contract__", None)


def walk(dependant: Dependant) -> list[Dependant]:
    out = [dependant]
    for d in dependant.dependencies:
        out.extend(walk(d))
    return out


def document(app: FastAPI, routes: list[Any]) -> dict[str, Any]:
    """The app's OpenAPI document, built once (FastAPI caches it in ``app.openapi_schema``);
    ``routes`` are the app's routes with included routers expanded."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                         routes=app.routes, tags=app.openapi_tags, servers=app.servers)
    full = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(full.pop("$defs", {}))
    components["Problem"] = _absent_not_null(full)
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            op = schema["paths"][route.path_format][method.lower()]
            _parameters(route, op)
            _request_body(op)
            _summaries(route, op)
            for answer in op["responses"].values():
                if answer.get("description") == "Successful Response":  # FastAPI's own words
                    answer["description"] = "成功"
    app.openapi_schema = schema
    return schema


def _parameters(route: APIRoute, op: dict[str, Any]) -> None:
    """Headers the route requires are required; and a parameter is never ``null`` — FastAPI
    writes an optional one as ``anyOf [X, null]``, which a client sends as the text "null"."""
    required = {name for d in walk(route.dependant) if (decl := _declared(d.call))
                for name in decl.requires_headers}
    for param in op.get("parameters", []):
        schema = param.get("schema", {})
        options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        if "anyOf" in schema and len(options) == 1:
            param["schema"] = {k: v for k, v in schema.items() if k != "anyOf"} | options[0]
            if param["schema"].get("default", 0) is None:
                del param["schema"]["default"]
        if param["in"] == "header" and param["name"] in required:
            param["required"] = True


def _absent_not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A problem's optional members are left out when they do not apply, never sent as ``null``:
    say so (no ``null``, no ``default``). With ``default: null`` openapi-typescript typed them as
    always present (``missing: string[] | null``), and a client reading one found ``undefined``."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name not in required:
            prop.pop("default", None)
            options = [s for s in prop.get("anyOf", ()) if s.get("type") != "null"]
            if "anyOf" in prop and len(options) == 1:
                del prop["anyOf"]
                prop.update(options[0])
    return schema


def _request_body(op: dict[str, Any]) -> None:
    """An optional body (``body: TriggerBody | None = None``) is written by FastAPI as ``anyOf
    [X, null]``; a generated Python client then sends its "unset" marker as JSON and fails before
    the request leaves. The body is optional (``required`` absent): when there is one, it is X."""
    body = op.get("requestBody")
    if not body or body.get("required"):
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        if "anyOf" in schema and len(options) == 1:
            media["schema"] = options[0]


def _summaries(route: APIRoute, op: dict[str, Any]) -> None:
    doc = (route.endpoint.__doc__ or "").strip()
    if doc:
        first, _, rest = doc.partition("\n")
        if route.summary is None:
            op["summary"] = first.strip().rstrip("。")
        op["description"] = re.sub(r"\n\s*\n", "\n\n", rest.strip()) if rest.strip() else first.strip()


