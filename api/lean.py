"""The write routes' request handler: FastAPI's checks, resolved in one pass planned at start-up.

A transition request spent more Python in FastAPI's dependency resolution than in the engine
(about 1,250 function calls of 4,750, ``bench/profile_transition.py``): each request walked the
dependency tree anew, and for every header and path parameter worked out again from its type
annotation how to read it. A route whose dependencies are of the few kinds the write routes use
(the session, async functions such as ``get_actor`` and ``required_version``, the bearer scheme;
path and header parameters; one JSON body) gets this plan instead: the tree flattened once,
every parameter's field and lookup key found once.

Nothing is checked less. Each value is validated by the very field FastAPI built for it
(``_validate_value_with_model_field``: the same errors, the same 422), the body by FastAPI's own
``request_body_to_args``; the dependencies run in FastAPI's order (a missing token is 401
before a bad header is 422, a missing If-Match 428 before the body's errors), the session
through the request's function-scoped exit stack as FastAPI would enter it, the endpoint on one
pool thread. Anything else — a query parameter, a sync dependency, a dependency used twice,
``dependency_overrides`` in force — keeps FastAPI's handler (``plan`` returns None).
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi._compat import ModelField, Undefined, field_annotation_is_sequence, lenient_issubclass
from fastapi.dependencies.models import Dependant, _is_async_gen_callable, _is_coroutine_callable
from fastapi.dependencies.utils import (
    _is_json_field,
    _validate_value_with_model_field,
    get_validation_alias,
    request_body_to_args,
)
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.routing import _effective_route_context_var
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.deps import get_session

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class Param:
    field: ModelField
    key: str  # where the request carries it: the path parameter's or the header's name
    loc: tuple[str, str]


@dataclass(frozen=True)
class Step:
    """One dependency, or the endpoint: what it needs, in FastAPI's order, then how to call it."""

    name: str | None
    call: Callable[..., Any]
    kind: str  # "session" (the request's unit of work), "async" (awaited), "endpoint"
    needs: tuple[Step, ...]
    path: tuple[Param, ...]
    headers: tuple[Param, ...]
    request_params: tuple[str, ...]  # where it takes the request (as Request or HTTPConnection)


@dataclass(frozen=True)
class Plan:
    endpoint: Step
    body_fields: tuple[ModelField, ...]
    embed_body_fields: bool


def plan(dependant: Dependant, embed_body_fields: bool) -> Plan | None:
    """The route's plan, or None when it uses anything the plan does not do as FastAPI does."""
    seen: set[Any] = set()
    endpoint = _step(dependant, "endpoint", seen, top=True)
    if endpoint is None:
        return None
    return Plan(endpoint, tuple(dependant.body_params), embed_body_fields)


def _step(d: Dependant, kind: str, seen: set[Any], top: bool = False) -> Step | None:
    if d.call in seen or d.query_params or d.cookie_params or (d.body_params and not top):
        return None
    if any((d.websocket_param_name, d.response_param_name,
            d.background_tasks_param_name, d.security_scopes_param_name)):
        return None
    seen.add(d.call)
    needs: list[Step] = []
    for sub in d.dependencies:
        if sub.call is get_session:
            sub_kind = "session" if sub.scope == "function" else ""
        elif _is_coroutine_callable(sub.call) and not _is_async_gen_callable(sub.call):
            sub_kind = "async"
        else:
            sub_kind = ""  # a sync dependency (a pool thread of its own), a generator …
        step = _step(sub, sub_kind, seen) if sub_kind and sub.use_cache else None
        if step is None:
            return None
        needs.append(step)
    path = tuple(Param(f, get_validation_alias(f), ("path", get_validation_alias(f))) for f in d.path_params)
    headers = tuple(Param(f, _header_key(f), ("header", get_validation_alias(f))) for f in d.header_params)
    if any(field_annotation_is_sequence(p.field.field_info.annotation) or _is_json_field(p.field)
           or lenient_issubclass(p.field.field_info.annotation, BaseModel) for p in (*path, *headers)):
        return None
    if any(isinstance(p.field.field_info, params.Header) and not getattr(
            p.field.field_info, "convert_underscores", True) for p in headers):
        return None
    connection = tuple(n for n in (d.http_connection_param_name, d.request_param_name) if n)
    return Step(d.name, d.call, kind, tuple(needs), path, headers, connection)  # type: ignore[arg-type]


def _header_key(field: ModelField) -> str:
    """FastAPI's: the alias, else the parameter's name with ``_`` as ``-`` (looked up case-blind)."""
    alias = get_validation_alias(field)
    return alias.replace("_", "-") if alias == field.name else alias


def effective(route: Any) -> Any:
    """The route as FastAPI builds its handler: an included router's route is built once more,
    in its app's context (the app's dependencies and overrides), as FastAPI's own
    ``APIRoute.get_route_handler`` finds it."""
    context = _effective_route_context_var.get()
    return context if context is not None and context.original_route is route else route


def handler(route_plan: Plan, route: Any, fallback: Handler) -> Handler:
    """The route's handler; FastAPI's (``fallback``) while dependency overrides are in force."""
    overrides = route.dependency_overrides_provider

    async def app(request: Request) -> Response:
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            return await fallback(request)
        body = await _read_body(request, route_plan)
        stack: AsyncExitStack = request.scope["fastapi_function_astack"]
        errors: list[Any] = []
        values = await _solve(route_plan.endpoint, request, stack, errors)
        if route_plan.body_fields:
            body_values, body_errors = await request_body_to_args(
                body_fields=list(route_plan.body_fields), received_body=body,
                embed_body_fields=route_plan.embed_body_fields)
            values.update(body_values)
            errors.extend(body_errors)
        if errors:
            raise RequestValidationError(errors, body=None if body is Undefined else body)
        answer = await run_in_threadpool(route_plan.endpoint.call, **values)
        if isinstance(answer, Response):
            return answer
        return _serialised(route, answer)

    return app


async def _solve(step: Step, request: Request, stack: AsyncExitStack, errors: list[Any]) -> dict[str, Any]:
    """The values ``step`` is called with, its dependencies run first; errors collected as
    FastAPI collects them (a dependency whose own inputs fail is not called)."""
    values: dict[str, Any] = {}
    for need in step.needs:
        before = len(errors)
        sub_values = await _solve(need, request, stack, errors)
        if len(errors) > before:
            continue
        if need.kind == "session":
            solved = await stack.enter_async_context(asynccontextmanager(need.call)(**sub_values))
        else:
            solved = await need.call(**sub_values)
        if need.name is not None:
            values[need.name] = solved
    for param in step.path:
        _validate(param, request.path_params.get(param.key), values, errors)
    for param in step.headers:
        _validate(param, request.headers.get(param.key), values, errors)
    for name in step.request_params:
        values[name] = request
    return values


def _validate(param: Param, raw: Any, values: dict[str, Any], errors: list[Any]) -> None:
    value, found = _validate_value_with_model_field(
        field=param.field, value=Undefined if raw is None else raw, values=values, loc=param.loc)
    if found:
        errors.extend(found)
    else:
        values[param.field.name] = value


async def _read_body(request: Request, route_plan: Plan) -> Any:
    """The body as FastAPI's handler reads it: JSON when the Content-Type says so, else bytes."""
    if not route_plan.body_fields:
        return Undefined
    try:
        raw = await request.body()
        if not raw:
            return Undefined
        content_type = request.headers.get("content-type")
        if content_type:
            message = email.message.Message()
            message["content-type"] = content_type
            subtype = message.get_content_subtype()
            if message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
                return await request.json()
        return raw
    except json.JSONDecodeError as e:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": e.msg}}], body=e.doc) from e
    except HTTPException:
        raise
    except Exception as e:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from e


def _serialised(route: Any, answer: Any) -> Response:
    """An endpoint that returned data rather than a Response: validated and encoded by its
    response model, as FastAPI would."""
    field = route.response_field
    if field is None:
        return route.response_class(jsonable_encoder(answer), status_code=route.status_code or 200)
    value, errors = field.validate(answer, {}, loc=("response",))
    if errors:
        raise ResponseValidationError(errors=errors, body=answer)
    content = field.serialize_json(value, include=route.response_model_include, exclude=route.response_model_exclude,
                                   by_alias=route.response_model_by_alias,
                                   exclude_unset=route.response_model_exclude_unset,
                                   exclude_defaults=route.response_model_exclude_defaults,
                                   exclude_none=route.response_model_exclude_none)
    return Response(content, status_code=route.status_code or 200, media_type="application/json")
