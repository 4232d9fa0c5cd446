"""``/problems/<name>``: the page each problem ``type`` URI resolves to (RFC 9457 §3.1.1).

Every kind of refusal is an ``EngineError`` subclass that declares its type, title and ``help``
where it is raised; this page lists them from the classes themselves, so a new kind is explained
the moment it exists (and the contract test fails if it has no help).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from api.pages import web
from api.routing import Router
from engine.errors import EngineError, NotFound

router = Router(pages=True)
PREFIX = "/problems/"


@dataclass(frozen=True)
class ProblemType:
    type: str
    status: int
    title: str
    help: str


def _kinds(cls: type[EngineError]) -> list[type[EngineError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_kinds(sub)]
    return out


def catalog() -> dict[str, ProblemType]:
    """Type URI → what the page says; the first class declaring a type speaks for it."""
    out: dict[str, ProblemType] = {}
    for cls in _kinds(EngineError):
        if cls.type.startswith(PREFIX) and cls.type not in out:
            out[cls.type] = ProblemType(cls.type, cls.status, cls.title, cls.help)
    return dict(sorted(out.items(), key=lambda kv: (kv[1].status, kv[0])))


@router.get("/problems", response_class=HTMLResponse)
def problem_index(request: Request) -> Response:
    return web.render(request, "problem_types.html", kinds=list(catalog().values()), one=None)


@router.get("/problems/{name}", response_class=HTMLResponse)
def problem_page(name: str, request: Request) -> Response:
    kind = catalog().get(PREFIX + name)
    if kind is None:
        raise NotFound(f"没有名为 {name} 的问题类型")
    return web.render(request, "problem_types.html", kinds=[kind], one=kind)
