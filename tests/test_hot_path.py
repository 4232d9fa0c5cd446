"""A clerk's transition request takes one thread hop on SQLite: the route's own.

Each hop hands the request to a pool thread and back and wakes the loop in between; at saturation
on SQLite those hand-offs, not the work, held the writer lock longest. The token is read on the
loop (microseconds in-process), the version header is parsed there, the unit commits on the
route's thread as it returns, and a committed unit closes without another hop. On PostgreSQL the
token read is a round trip, so it takes a thread of its own.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from api.deps import SessionDep
from api.routing import Router, grouped


def test_a_transition_request_runs_on_one_pool_thread(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS)
    hops: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    r = demo.client.post(f"/api/v1/cases/{case['number']}/triggers/accept",
                         headers=demo.h("王芳", **{"If-Match": f'"{case["version"]}"'}))
    assert r.status_code == 200, r.text
    assert r.json()["state"]["id"] == "accepted"
    expected = 1 if demo.engine.dialect.name == "sqlite" else 2  # PostgreSQL: the token read too
    assert len(hops) == expected, hops
    # Every check still runs: a stale version is refused, on the loop, before any thread.
    hops.clear()
    stale = demo.client.post(f"/api/v1/cases/{case['number']}/triggers/start_review",
                             headers=demo.h("王芳", **{"If-Match": "nonsense"}))
    assert stale.status_code == 422 and "If-Match" in stale.text


def test_write_routes_resolve_dependencies_by_plan_and_the_actor_once(demo: Demo,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI's per-request dependency walk (``solve_dependencies``) is not on a write route's
    path (api.lean), and the token is read once even where the body budget needed it first."""
    import fastapi.routing

    import api.deps

    solved: list[str] = []
    real_solve = fastapi.routing.solve_dependencies

    async def counted_solve(**kwargs):  # type: ignore[no-untyped-def]
        solved.append(kwargs["dependant"].path)
        return await real_solve(**kwargs)

    reads: list[str] = []
    real_read = api.deps.authenticate

    def counted_read(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(args[1])
        return real_read(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted_solve)
    monkeypatch.setattr(api.deps, "authenticate", counted_read)
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS)
    assert solved == [] and len(reads) == 1
    r = demo.client.post(f"/api/v1/cases/{case['number']}/triggers/accept", json={"comment": "材料齐全"},
                         headers=demo.h("王芳", **{"If-Match": f'"{case["version"]}"', "Idempotency-Key": "k-1"}))
    assert r.status_code == 200, r.text
    assert solved == [] and len(reads) == 2, (solved, reads)  # one read per request, body or not
    # A route outside the plan keeps FastAPI's resolution (and the counting above sees it).
    assert demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h("王芳")).status_code == 200
    assert solved == ["/api/v1/cases/{number}"]


def _answers(demo: Demo, requests: list[tuple[str, str, dict[str, str], bytes | None]]) -> list[tuple[int, Any, str]]:
    out = []
    for method, path, headers, body in requests:
        r = demo.client.request(method, path, headers=headers, content=body)
        out.append((r.status_code, r.json() if r.content else None, r.headers.get("www-authenticate", "")))
    return out


def test_the_plan_answers_bad_requests_as_fastapi_does(demo: Demo) -> None:
    """Every refusal, and which refusal comes first, is the same with the plan as with FastAPI's
    own resolution (in force while any dependency override is), and none changes the case."""
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS)
    n, v = case["number"], f'"{case["version"]}"'
    tok, junk = demo.h("王芳"), {"Authorization": "Bearer junk"}
    js = {"Content-Type": "application/json"}
    fire = f"/api/v1/cases/{n}/triggers/accept"
    requests: list[tuple[str, str, dict[str, str], bytes | None]] = [
        ("POST", fire, {"If-Match": v}, None),  # no token
        ("POST", fire, {**junk, "If-Match": "nonsense"}, None),  # 401 before the bad header
        ("POST", fire, {**junk, **js, "If-Match": v}, b'{"comment": 1}'),
        ("POST", fire, tok, None),  # 428
        ("POST", fire, {**tok, "If-Match": "nonsense"}, None),
        ("POST", fire, {**tok, "If-Match": '"999"'}, None),  # stale
        ("POST", fire, {**tok, "If-Match": v, "Idempotency-Key": "x" * 200}, None),
        ("POST", fire, {**tok, **js, "If-Match": v}, b'{"comment": '),  # malformed JSON
        ("POST", fire, {**tok, **js, "If-Match": v}, b'{"surprise": true}'),  # extra="forbid"
        ("POST", fire, {**tok, **js, "If-Match": v}, b'{"comment": "' + b"x" * 2001 + b'"}'),
        ("POST", fire, {**tok, **js, "If-Match": v}, b"[1, 2]"),
        ("POST", fire, {**tok, "Content-Type": "text/plain", "If-Match": v}, b'{"comment": "hi"}'),
        ("POST", fire, {**tok, **js, "If-Match": v, "Idempotency-Key": "y" * 200}, b'{"defer": 3}'),  # both
        ("POST", fire, {**tok, **js}, b'{"defer": 3}'),  # 428 before the body's errors
        ("POST", fire + "?dry_run=1", {**tok, "If-Match": v}, None),
        ("POST", f"/api/v1/cases/{n}/triggers/no_such_trigger", {**tok, "If-Match": v}, None),
        ("POST", "/api/v1/cases/0000/triggers/accept", {**tok, "If-Match": v}, None),
        ("PUT", f"/api/v1/cases/{n}/materials/floor_plans", {**tok, **js, "If-Match": v}, b'{"status": "lost"}'),
        ("PUT", f"/api/v1/cases/{n}/materials/floor_plans", {**tok, "If-Match": v}, None),  # body required
        ("POST", "/api/v1/cases", {**tok, **js}, b'{"item_code": "GGCSWSXK"}'),
        ("POST", f"/api/v1/cases/{n}/claim", {**tok}, None),
    ]
    planned = _answers(demo, requests)

    def unrelated() -> None:  # any override in force: FastAPI's own handler answers
        return None

    demo.client.app.dependency_overrides[unrelated] = unrelated  # type: ignore[attr-defined]
    try:
        fastapi_own = _answers(demo, requests)
    finally:
        demo.client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    for request, a, b in zip(requests, planned, fastapi_own, strict=True):
        assert a == b, (request[:2], request[2], a, b)
    assert [status for status, _, _ in planned] == [
        401, 401, 401, 428, 422, 412, 422, 422, 422, 422, 422, 422, 422, 428, 422, 409, 404, 422, 422, 422, 428]
    after = demo.client.get(f"/api/v1/cases/{n}", headers=tok).json()
    assert after["version"] == case["version"] and after["state"]["id"] == case["state"]["id"]


def test_a_planned_route_that_returns_data_answers_by_its_response_model(sqlite_db: sa.Engine,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The write routes answer a ready Response; one that returns data gets FastAPI's treatment
    of it all the same: validated and filtered by its response model."""
    import fastapi.routing
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from pydantic import BaseModel

    class Out(BaseModel):
        n: int
        label: str = "默认"

    router = Router(prefix="/t")

    @router.post("/{n}", response_model=Out, status_code=201)
    @grouped
    def echo(n: int, session: SessionDep) -> Any:
        return {"n": n, "hidden": "不在模型中"}

    app = FastAPI()
    app.state.engine = sqlite_db
    app.include_router(router)
    solved: list[object] = []
    real_solve = fastapi.routing.solve_dependencies

    async def counted_solve(**kwargs):  # type: ignore[no-untyped-def]
        solved.append(kwargs["dependant"])
        return await real_solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted_solve)
    with TestClient(app) as client:
        planned = client.post("/t/5")
        assert solved == []
        app.dependency_overrides[Out] = Out  # any override: FastAPI's own handler
        own = client.post("/t/5")
        assert len(solved) == 1
    assert (planned.status_code, planned.json()) == (own.status_code, own.json()) == (201, {"n": 5, "label": "默认"})
