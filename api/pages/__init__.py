"""Server-rendered pages: the clerk workbench, supervisor dashboard, designer view, progress query."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from api.pages import board, designer, progress, scans_ui, video_ui, web, workbench
from api.problems import log_refusal
from engine.errors import EngineError


def install(app: FastAPI) -> None:
    """Mount the pages and static files; engine errors on /ui/ pages render as HTML, not JSON."""
    app.mount("/static", StaticFiles(directory=str(web.ROOT / "static")), name="static")
    for module in (workbench, board, designer, progress):
        app.include_router(module.router)
    scans_ui.install(app)  # thumbnails and upload, when the scans engine (issue #3) is present
    video_ui.install(app)  # the case page's video step, when video rooms (issue #5) are present
    api_handler = app.exception_handlers[EngineError]

    async def _engine_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/ui/") or request.url.path == "/progress":
            assert isinstance(exc, EngineError)
            log_refusal(request, exc)
            return web.error_page(request, exc)
        return await api_handler(request, exc)

    async def _login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, web.LoginRequired)
        return web.login_redirect(exc.next_url)

    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(web.LoginRequired, _login)
