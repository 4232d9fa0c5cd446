"""Every error of the app, answered in its route's flavour: problem details for the API, a page
for the pages (``api.routing.flavour_of``). One handler per kind of error, installed once."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from api.pages import web
from api.problems import log_refusal, problem
from api.routing import all_routes, flavour_of
from engine import labels
from engine.errors import EngineError


def _answer(request: Request, status: int, title: str, detail: str, type_: str = "about:blank",
            headers: dict[str, str] | None = None, **extra: object) -> Response:
    if flavour_of(request) == "page":  # people read it: fields by their labels, never a path
        errors = extra.get("errors")
        if isinstance(errors, list):
            detail = labels.engine_message(detail, errors)
        return web.error_page(request, status, title, detail, headers)
    return problem(status, title, detail, type_, headers, **extra)


async def _engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    log_refusal(request, exc)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status in (429, 503):
        headers = {"Retry-After": str(exc.extra.get("retry_after", 5))}
    if exc.status == 429:  # draft-ietf-httpapi-ratelimit-headers: nothing left until the reset
        headers["RateLimit"] = f'"{exc.type.rsplit("/", 1)[-1]}";r=0;t={headers["Retry-After"]}'
    extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
    return _answer(request, exc.status, exc.title, exc.detail, exc.type, headers, **extra)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if flavour_of(request) == "page":  # pydantic's English and patterns stay out of pages
        shown = labels.validation_sentences(exc.errors())
        return web.error_page(request, 422, "输入无效", "; ".join(f"{e['field']}: {e['reason']}" for e in shown))
    errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body", "reason": e["msg"]}
              for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return _answer(request, 422, "输入无效", detail, "/problems/invalid-input", errors=errors)


# Starlette's and FastAPI's own refusals (no route matched, wrong method, a body that does not
# parse), in the product's language.
_HTTP_TITLES = {400: "请求体无法解析", 404: "未找到该页面或资源", 405: "不支持该请求方法"}


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    title = _HTTP_TITLES.get(exc.status_code, str(exc.detail))
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    if exc.status_code == 400:  # FastAPI: a body it could not parse (malformed JSON or form)
        return _answer(request, 422, "输入无效", "请求体无法解析", "/problems/invalid-input",
                       errors=[{"field": "body", "reason": "请求体无法解析 (格式与 Content-Type 不符)"}])
    return _answer(request, exc.status_code, title, title, headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at this path (Starlette lists only the first
    route that matched the path, so GET and POST on one path declared as two routes said GET)."""
    matched = [r for r in all_routes(request.app.routes) if r.matches(request.scope)[0] != Match.NONE]
    # A literal path (/tickets/call-next) is its own resource, not a value of a parameter beside it
    # (/tickets/{ticket_id}): where routes declare the path as written, only theirs count.
    literal = [r for r in matched if getattr(r, "path", None) == request.scope["path"]]
    methods: set[str] = set()
    for route in literal or matched:
        methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, web.LoginRequired)
    return web.login_redirect(exc.next_url)


def install(app: FastAPI) -> None:
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(web.LoginRequired, _login)
