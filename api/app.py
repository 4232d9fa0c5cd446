"""The FastAPI application: thin routes over the engine, problem details for every error."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI

from api import pages, problems
from api.limits import BodyLimit
from api.routes import cases, documents, items, mail, public, verify
from api.routes.video import router as video_router
from core.settings import get_settings
from storage.db import get_engine, loop_reader


def create_app(engine: sa.Engine | None = None) -> FastAPI:
    """``engine`` is the case database (default: settings); tests hand in their own."""
    app = FastAPI(
        title="通办 Tongban",
        version="0.1.0",
        description="跨域通办案件编排平台: 事项定义、办件流转、跨域移交。",
        openapi_url="/openapi.json",
    )
    app.state.engine = engine or get_engine()
    if app.state.engine.dialect.name == "sqlite":
        loop_reader(app.state.engine)  # made now, while the pool surely has a connection to give
    problems.install(app)
    app.state.progress_limiter = public.SlidingWindow()
    app.add_middleware(BodyLimit, max_bytes=get_settings().max_body_bytes)
    app.include_router(public.router)
    app.include_router(items.router)
    app.include_router(cases.router)
    documents.install(app)  # scans and evidence; uploads get their own body limit
    app.include_router(video_router)
    app.include_router(verify.router)
    app.include_router(mail.router)
    if get_settings().embedded_flows:  # `tongban serve` drains the outbox in-process (issue #4)
        from flows.embedded import install as install_flows

        install_flows(app)
    pages.install(app)
    return app
