"""Routes by construction: every route of the app keeps to the request's unit of work, and every
error is answered in its route's flavour (problem details for the API, a page for the pages)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from api import errors
from api.app import ROUTERS, create_app
from api.deps import SessionDep
from api.routing import Router, all_routes, unit_problems
from engine.errors import Conflict


def test_every_route_of_the_app_keeps_to_the_unit_of_work(sqlite_db: sa.Engine) -> None:
    app = create_app(sqlite_db)
    routes = [r for r in all_routes(app.routes) if hasattr(r, "endpoint")]
    assert len(routes) > 60
    assert [p for r in routes for p in unit_problems(r)] == []
    # every route but FastAPI's own docs comes from a router of the one list
    mounted = {id(r) for router in ROUTERS for r in router.routes}
    docs = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    assert [r.path for r in routes if id(r) not in mounted and r.path not in docs] == []


def _in_session(session: SessionDep) -> Session:
    return session


def test_the_walk_fails_on_a_route_that_escapes(sqlite_db: sa.Engine) -> None:
    plain = APIRouter()  # a router made without api.routing.Router

    @plain.post("/planted/plain")
    def plain_route(session: SessionDep) -> dict[str, str]:
        return {}

    ours = Router()

    @ours.post("/planted/indirect")
    def indirect(unit: Annotated[Session, Depends(_in_session)]) -> dict[str, str]:
        return {}  # the session comes only through a sub-dependency: nothing commits it on return

    app = create_app(sqlite_db)
    app.include_router(plain)
    app.include_router(ours)
    found = [p for r in all_routes(app.routes) for p in unit_problems(r)]
    assert any("/planted/plain" in p and "UnitRoute" in p for p in found)
    assert any("/planted/indirect" in p and "子依赖" in p for p in found)
    assert len(found) == 2


def _flavour_app() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    api, pages = Router(), Router(pages=True)

    @api.get("/anything/api")
    def api_route(n: int) -> Any:
        raise Conflict("已被他人改动", field="version")

    @pages.get("/anything/page")
    def page_route(n: int) -> Any:
        raise Conflict("已被他人改动", field="version")

    app.include_router(api)
    app.include_router(pages)
    return app


@pytest.mark.parametrize("query", ["?n=1", "?n=x"], ids=["engine_error", "invalid_input"])
def test_errors_follow_the_route_not_the_path(query: str) -> None:
    client = TestClient(_flavour_app())
    html = {"Accept": "text/html"}
    r = client.get("/anything/api" + query, headers=html)
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] in (409, 422)
    r = client.get("/anything/page" + query)
    assert r.headers["content-type"].startswith("text/html") and r.status_code in (409, 422)
    assert "<html" in r.text and ("已被他人改动" in r.text or "输入无效" in r.text)


def test_an_unmatched_path_answers_as_the_client_asks() -> None:
    client = TestClient(_flavour_app())
    r = client.get("/nowhere", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "未找到该页面或资源" in r.text
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
