"""The FastAPI application: thin routes over the engine, every error in its route's flavour."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import contract, errors
from api.clientaddr import ClientAddress
from api.limits import BodyLimit, allow_larger
from api.pages import board, designer, progress, scans_ui, video_ui, web, workbench
from api.routes import cases, dashboard, documents, events, items, mail, public, verify, video, webhooks
from api.routing import Router, all_routes
from api.same_origin import SameOrigin
from api.security_headers import SecurityHeaders
from core.settings import get_settings
from engine import extensions
from storage.db import get_engine, loop_reader

# Every router of the app, in one list: the API's, then the pages'.
ROUTERS: tuple[Router, ...] = (
    public.router, items.router, cases.router, documents.router, dashboard.router, video.router,
    verify.router, mail.router, events.router, webhooks.router,
    workbench.router, scans_ui.router, video_ui.router, board.router, designer.router, progress.router,
)


def create_app(engine: sa.Engine | None = None) -> FastAPI:
    """``engine`` is the case database (default: settings); tests hand in their own."""
    app = FastAPI(
        title="通办 Tongban",
        version="0.1.0",
        description="跨域通办案件编排平台: 事项定义、办件流转、跨域移交。",
        openapi_url="/openapi.json",
    )
    extensions.load()
    app.state.engine = engine or get_engine()
    if app.state.engine.dialect.name == "sqlite":
        loop_reader(app.state.engine)  # made now, while the pool surely has a connection to give
    errors.install(app)
    app.state.progress_limiter = public.SlidingWindow()
    app.add_middleware(BodyLimit, max_bytes=get_settings().max_body_bytes,
                       unauthenticated_bytes=get_settings().max_unauthenticated_body_bytes)
    app.add_middleware(SameOrigin)  # judges the origin the client used: inside ClientAddress
    app.add_middleware(ClientAddress)  # added last = outermost: every layer sees the real client
    for router in ROUTERS:
        app.include_router(router)
        for pattern, max_bytes, uncredentialed in router.large_bodies:
            allow_larger(app, pattern, max_bytes, uncredentialed)
    app.openapi = lambda: contract.document(app, all_routes(app.routes))  # type: ignore[method-assign]
    app.mount("/static", StaticFiles(directory=str(web.ROOT / "static")), name="static")
    # Outermost, around Starlette's error middleware too: every answer gets the headers, a 500 included.
    build = app.build_middleware_stack
    docs = [p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p]
    app.build_middleware_stack = lambda: SecurityHeaders(build(), docs)  # type: ignore[method-assign]
    if get_settings().embedded_flows:  # `tongban serve` drains the outbox in-process
        from flows.embedded import install as install_flows

        install_flows(app)
    return app
