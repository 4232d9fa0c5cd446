"""The FastAPI application: thin routes over the engine, problem details for every error."""

from __future__ import annotations

from fastapi import FastAPI

from api import problems
from api.limits import BodyLimit
from api.routes import cases, items, public
from core.settings import get_settings


def create_app() -> FastAPI:
    app = FastAPI(
        title="通办 Tongban",
        version="0.1.0",
        description="跨域通办案件编排平台: 事项定义、办件流转、跨域移交。",
        openapi_url="/openapi.json",
    )
    problems.install(app)
    app.state.progress_limiter = public.SlidingWindow()
    app.add_middleware(BodyLimit, max_bytes=get_settings().max_body_bytes)
    app.include_router(public.router)
    app.include_router(items.router)
    app.include_router(cases.router)
    return app
