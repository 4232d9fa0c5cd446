"""The FastAPI application: thin routes over the engine, problem details for every error."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from api import problems
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
    limit = get_settings().max_body_bytes

    @app.middleware("http")
    async def body_limit(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return problems.problem(413, "请求体过大", f"请求体超过 {limit} 字节",
                                    "/problems/too-large")
        response: Response = await call_next(request)
        return response

    app.include_router(public.router)
    app.include_router(items.router)
    app.include_router(cases.router)
    return app
