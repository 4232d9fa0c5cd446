"""One router type for the whole app: the unit of work and the error flavour come with it.

``Router()`` serves the JSON API (errors as RFC 9457 problem details); ``Router(pages=True)``
serves HTML pages (errors as pages; not in the OpenAPI schema). Every route is a ``UnitRoute``:
a sync endpoint that takes the request's session (``SessionDep``, whatever the parameter is
called) commits it on its own thread as it returns, before the answer leaves.

Why commit there: left to ``get_session``'s exit, the commit came a thread hop later, and on
SQLite the writer lock (one for all workers) stayed held across that hop: at saturation the two
cores sat 30 % idle while requests queued for the lock. A failed commit still fails the request.
Async endpoints commit in ``get_session``'s exit, on a worker thread: the loop never waits for
the writer.

A sync route marked ``@grouped`` has its dependencies resolved by a plan made once
(``api.lean``) instead of FastAPI's per-request walk, and runs as one unit of a group commit (``storage.group_commit``):
its work joins the transaction another request of the process is writing, under a savepoint,
and it returns once that transaction committed; a group that fails to commit answers 503.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Literal

from fastapi import APIRouter, params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from api import lean
from api.contract import document_route, operation_id, problems, walk
from api.deps import get_session
from engine.errors import InvalidInput, Unavailable
from storage.group_commit import GroupCommitFailed, committer_for

Flavour = Literal["api", "page"]
F = typing.TypeVar("F", bound=Callable[..., Any])
GROUPED = "__group_commit__"


def grouped(endpoint: F) -> F:
    """Marks a sync write route whose whole work is its own unit of work (no commit midway, no
    write unit of its own, nothing outside the database before the commit): it may be written
    in a group commit with other requests (``storage.group_commit``)."""
    setattr(endpoint, GROUPED, True)
    return endpoint


def session_parameter(endpoint: Callable[..., Any]) -> str | None:
    """The parameter through which the endpoint receives the request's session, if any."""
    hints = typing.get_type_hints(endpoint, include_extras=True)
    for name in inspect.signature(endpoint).parameters:
        for meta in getattr(hints.get(name), "__metadata__", ()):
            if isinstance(meta, params.Depends) and meta.dependency is get_session:
                return name
    return None


class UnitRoute(APIRoute):
    flavour: ClassVar[Flavour] = "api"

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.session_param = session_parameter(endpoint)
        self.commits_on_return = self.session_param is not None and not inspect.iscoroutinefunction(endpoint)
        self.grouped = self.commits_on_return and getattr(endpoint, GROUPED, False)
        if self.commits_on_return:
            endpoint = _commit_on_return(endpoint, self.session_param, self.grouped)  # type: ignore[arg-type]
        if self.grouped:  # a group that fails to commit fails this request too
            kwargs["responses"] = {**problems(503), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)
        if self.flavour == "api" and self.include_in_schema:
            document_route(self)  # every problem status it can answer, into the OpenAPI document
        self.query_names = frozenset(p.alias for d in walk(self.dependant) for p in d.query_params)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.flavour != "api":
            return handler
        if self.grouped:  # the write routes: dependencies resolved by a plan made once (api.lean)
            route = lean.effective(self)
            if (route_plan := lean.plan(route.dependant, route._embed_body_fields)) is not None:
                handler = lean.handler(route_plan, route, handler)

        async def refuse_unknown_query(request: Request) -> Response:
            # An API client's misspelt or unsupported filter (``q=``) is an error, not an empty
            # or unfiltered answer it would take for the truth.
            if unknown := sorted(set(request.query_params) - self.query_names):
                raise InvalidInput(unknown[0], "不支持的查询参数" + (
                    f" (可用: {', '.join(sorted(self.query_names))})" if self.query_names else ""))
            return await handler(request)

        return refuse_unknown_query


class PageRoute(UnitRoute):
    flavour: ClassVar[Flavour] = "page"


def _commit_on_return(endpoint: Callable[..., Any], param: str, grouped: bool) -> Callable[..., Any]:
    @functools.wraps(endpoint)  # FastAPI reads the signature (and annotations) through __wrapped__
    def run(*args: Any, **kwargs: Any) -> Any:
        committer = committer_for(kwargs[param]) if grouped else None
        if committer is None:
            result = endpoint(*args, **kwargs)
            kwargs[param].commit()
            return result
        # The request's own session stays unused (get_session closes it, nothing to send).
        try:
            return committer.run(lambda unit: endpoint(*args, **{**kwargs, param: unit}))
        except GroupCommitFailed as exc:
            raise Unavailable("本请求与同时到达的请求一并提交, 提交失败, 本请求未生效; 请稍后重试",
                              retry_after=1) from exc

    return run


class Router(APIRouter):
    """Every router of the app; ``pages=True`` for HTML pages."""

    def __init__(self, *, pages: bool = False, **kwargs: Any) -> None:
        if pages:
            kwargs.setdefault("include_in_schema", False)
        kwargs.setdefault("generate_unique_id_function", operation_id)
        super().__init__(route_class=PageRoute if pages else UnitRoute, **kwargs)
        # (path regex, max bytes, uncredentialed) for routes with a body budget of their own
        # (api.limits): uploads above the global cap, public routes that take a body.
        self.large_bodies: list[tuple[str, Callable[[], int], bool]] = []

    def allow_larger(self, path_pattern: str, max_bytes: Callable[[], int], *,
                     uncredentialed: bool = False) -> None:
        """Requests to paths matching ``path_pattern`` may carry up to ``max_bytes()`` of body.
        Requests without credentials keep the small unauthenticated budget unless
        ``uncredentialed``: for public routes whose body is its own credential (a signature, a
        join token, a query code)."""
        self.large_bodies.append((path_pattern, max_bytes, uncredentialed))


def flavour_of(request: Request) -> Flavour:
    """How to answer an error on this request: by the matched route, else as the client asks
    (no route matched: an unknown path or method)."""
    route = request.scope.get("route")
    if isinstance(route, UnitRoute):
        return route.flavour
    accept = request.headers.get("accept", "")
    return "page" if "text/html" in accept and "json" not in accept else "api"


def all_routes(routes: list[Any]) -> list[Any]:
    """The app's routes with included routers expanded (FastAPI keeps them as one entry each)."""
    out = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        out.extend(all_routes(inner.routes) if inner is not None else [r])
    return out


def unit_problems(route: Any) -> list[str]:
    """Why a route of the app escapes the request's unit of work (empty when it does not)."""
    if not isinstance(route, APIRoute):
        return []  # mounts (static files) and Starlette's own docs routes hold no unit
    name = f"{','.join(sorted(route.methods or ()))} {route.path}"
    if not isinstance(route, UnitRoute):
        return [f"{name}: 路由类型不是 UnitRoute (须由 api.routing.Router 定义)"]
    uses = _uses_session(route.dependant)
    if uses and route.session_param is None:
        return [f"{name}: 会话只经由子依赖取得, 同步路由返回时不会提交"]
    if route.session_param is not None and not route.commits_on_return and not inspect.iscoroutinefunction(
            route.dependant.call):
        return [f"{name}: 同步路由未在返回时提交"]
    return []


def _uses_session(dependant: Any) -> bool:
    return any(d.call is get_session or _uses_session(d) for d in dependant.dependencies)
