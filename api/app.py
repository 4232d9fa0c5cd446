"""The FastAPI application: thin routes over the engine, every error in its route's flavour."""

from __future__ import annotations

import gc

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api import contract, docs, errors
from api.clientaddr import ClientAddress
from api.limits import BodyLimit, allow_larger
from api.observe import Observe
from api.pages import (
    board,
    designer,
    hall,
    notices_ui,
    problem_types,
    progress,
    queue,
    scans_ui,
    video_ui,
    web,
    workbench,
)
from api.pages import booking as booking_pages
from api.pages import guide as guide_pages
from api.pages import kiosk as kiosk_pages
from api.routes import (
    appointments,
    cases,
    certificates,
    dashboard,
    directory,
    documents,
    evaluations,
    events,
    exchange,
    health,
    items,
    mail,
    notices,
    notifications,
    public,
    tickets,
    verify,
    video,
    webhooks,
)
from api.routes import guide as guide_routes
from api.routing import Router, all_routes
from api.same_origin import SameOrigin
from api.security_headers import SecurityHeaders
from core import logs
from core.settings import get_settings
from engine import extensions
from storage.db import get_engine, loop_reader

# Every router of the app, in one list: the API's, then the pages'.
ROUTERS: tuple[Router, ...] = (
    public.router, health.router, appointments.router, items.router, cases.router, documents.router, notices.router,
    dashboard.router, video.router,
    verify.router, certificates.router, mail.router, exchange.router, events.router, webhooks.router, docs.router,
    workbench.router, scans_ui.router, video_ui.router, board.router, designer.router, progress.router,
    notices_ui.router, verify.pages, problem_types.router,
    guide_routes.router, guide_pages.router,
    kiosk_pages.router,
    queue.router,
    tickets.router, evaluations.router, hall.router, notifications.router,
    booking_pages.router,
    directory.router,
)


def create_app(engine: sa.Engine | None = None) -> FastAPI:
    """``engine`` is the case database (default: settings); tests hand in their own."""
    app = FastAPI(
        title=docs.TITLE, summary=docs.SUMMARY, description=docs.DESCRIPTION, openapi_tags=docs.TAGS,
        version="0.1.0",
        openapi_url=docs.OPENAPI_PATH,
        docs_url=None, redoc_url=None,  # api.docs serves both, with their assets from this server
    )
    extensions.load()
    logs.configure("api")  # after the extensions: they import prefect, which sets up its logging
    app.state.engine = engine or get_engine()
    if app.state.engine.dialect.name == "sqlite":
        loop_reader(app.state.engine)  # made now, while the pool surely has a connection to give
    errors.install(app)
    app.state.progress_limiter = public.SlidingWindow()
    app.state.verify_limiter = public.SlidingWindow()  # PDF uploads checked on /verify
    app.add_middleware(SameOrigin)  # judges the origin the client used: inside ClientAddress
    if get_settings().cors_origins:  # off unless configured: the product's own pages are same-origin
        app.add_middleware(
            CORSMiddleware, allow_origins=get_settings().cors_origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-File-Name"],
            expose_headers=["ETag", "Location", "Retry-After", "Link", "X-Request-ID"], max_age=600)
    # Outside every other refusal: whoever answers before a body is read, the connection closes.
    app.add_middleware(BodyLimit, max_bytes=get_settings().max_body_bytes,
                       unauthenticated_bytes=get_settings().max_unauthenticated_body_bytes)
    # Request id, access log and latency: around everything but the client's address resolution.
    app.add_middleware(Observe)
    app.add_middleware(ClientAddress)  # added last = outermost: every layer sees the real client
    for router in ROUTERS:
        app.include_router(router)
        for pattern, max_bytes, uncredentialed in router.large_bodies:
            allow_larger(app, pattern, max_bytes, uncredentialed)
    app.openapi = lambda: contract.document(app, all_routes(app.routes))  # type: ignore[method-assign]
    app.mount("/static", StaticFiles(directory=str(web.ROOT / "static"), packages=docs.STATIC_PACKAGES), name="static")
    # Outermost, around Starlette's error middleware too: every answer gets the headers, a 500 included.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build(), docs.POLICIES)  # type: ignore[method-assign]
    if get_settings().embedded_flows:  # `tongban serve` drains the outbox in-process
        from flows.embedded import install as install_flows

        install_flows(app)
    return app


def serve_app() -> FastAPI:
    """The app as a server process runs it (``tongban serve``, one per uvicorn worker).

    What the start built (modules, the schema, routes, templates: about 440,000 tracked objects)
    lives as long as the process, yet each of Python's full collections walked all of it: about
    100 ms in a warmed process, every handler stopped (tests/test_serving_heap.py checks the
    ratio). ``gc.freeze`` moves it out of the collector's reach; what requests allocate is
    collected as before. In 10-second benchmark runs neither variant stalled (bench/README.md);
    how often a full collection comes under a day's load is not measured.
    Not in ``create_app``: tests make hundreds of apps in one process, and a frozen object
    that becomes garbage is never freed."""
    app = create_app()
    gc.collect()  # what the start left as garbage goes now, not frozen with the rest
    gc.freeze()
    return app
