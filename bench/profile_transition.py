"""Profile a clerk's transition request end to end, in this process, counted in function calls.

The app (``api.app.create_app``) is driven as uvicorn drives it: an ASGI ``http`` scope, the body
in one message, on an asyncio loop in this thread; the route's pool thread is profiled too (a
profiler per thread, merged). Each request is ``POST /api/v1/cases/{number}/triggers/accept``
with ``If-Match`` on a fresh case (公共场所卫生许可, SQLite in a temporary directory, the
benchmark's own setup: ``bench_transitions.prepare``). Calls are counted per request, so the
figures do not depend on the machine's load; timings in the listing do.

    PYTHONPATH=$PWD .venv/bin/python bench/profile_transition.py            # 200 requests
    PYTHONPATH=$PWD .venv/bin/python bench/profile_transition.py -n 50 --top 40
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bench_transitions as bench
import orjson

from api.app import create_app


class PerThread:
    """One ``cProfile.Profile`` for each thread that runs while it is on (cProfile sees only the
    thread that enabled it); threads started before it are not seen, so the app's worker threads
    must start inside (a fresh event loop starts its own)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.lock = threading.Lock()

    def _start_here(self, *_: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self.lock:
            self.profiles.append(profile)
        profile.enable()

    def __enter__(self) -> PerThread:
        threading.setprofile(self._start_here)
        self._start_here()
        return self

    def __exit__(self, *_: object) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        for profile in self.profiles:
            profile.disable()  # (another thread's: cProfile stops recording it all the same)

    def stats(self) -> pstats.Stats:
        buf = io.StringIO()
        stats = pstats.Stats(self.profiles[0], stream=buf)
        for profile in self.profiles[1:]:
            stats.add(profile)
        return stats


# Calls made while one of these runs, per request (its own call included). The route's own work
# is the endpoint as api.routing wraps it (engine, case view, commit).
PARTS: dict[str, tuple[str, str]] = {
    "FastAPI dependency resolution": ("fastapi/dependencies/utils.py", "solve_dependencies"),
    "planned dependency resolution (api.lean)": ("api/lean.py", "_solve"),
    "  of which opening the unit of work (get_session)": ("api/deps.py", "get_session"),
    "thread hop, loop side (anyio to_thread.run_sync)": ("anyio/to_thread.py", "run_sync"),
    "route's work (engine, view, commit)": ("api/routing.py", "run"),
    "  of which engine.advance.advance": ("engine/advance.py", "advance"),
    "  of which the case view": ("engine/views.py", "case_view"),
    "actor (api.deps.get_actor)": ("api/deps.py", "get_actor"),
}


class Counter:
    """Counts function calls (Python and C) in every thread, and those made under each of
    ``PARTS``; a pool thread's calls outside the route's work are the hop's other side."""

    def __init__(self) -> None:
        self.codes: dict[Any, str] = {}
        self.calls: dict[str, int] = dict.fromkeys([*PARTS, "thread hop, pool side", "all"], 0)
        self.main = threading.get_ident()
        self.lock = threading.Lock()

    def _tracer(self) -> Any:
        active: dict[str, int] = {}
        codes, calls, pool = self.codes, self.calls, threading.get_ident() != self.main

        def trace(frame: Any, event: str, arg: Any) -> None:
            if event == "call":
                part = codes.get(frame.f_code)
                if part is None and frame.f_code not in codes:
                    file = frame.f_code.co_filename.replace("\\", "/")
                    part = next((p for p, (f, n) in PARTS.items()
                                 if frame.f_code.co_name == n and file.endswith(f)), None)
                    codes[frame.f_code] = part
                if part is not None:
                    active[part] = active.get(part, 0) + 1
            elif event == "return":
                part = codes.get(frame.f_code)
                if part is not None:
                    active[part] -= 1
                return
            elif event != "c_call":
                return
            with self.lock:
                calls["all"] += 1
                for part, depth in active.items():
                    if depth:
                        calls[part] += 1
                if pool and not active.get("route's work (engine, view, commit)"):
                    calls["thread hop, pool side"] += 1

        return trace

    def _start_here(self, *_: Any) -> None:
        sys.setprofile(self._tracer())

    def __enter__(self) -> Counter:
        threading.setprofile(self._start_here)
        sys.setprofile(self._tracer())
        return self

    def __exit__(self, *_: object) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(None)


async def post(app: Any, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app, as uvicorn hands it over."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"host", b"127.0.0.1:8000"))
    if body:
        raw += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": raw, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
             "state": {}}
    sent = False
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays; the app never asks twice
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]


async def fire_all(app: Any, token: str, cases: Sequence[tuple[str, int]]) -> None:
    for number, version in cases:
        status, headers, body = await post(app, f"/api/v1/cases/{number}/triggers/accept",
                                           {"Authorization": f"Bearer {token}", "If-Match": f'"{version}"'})
        if status != 200 or orjson.loads(body)["state"]["id"] != "accepted" or "etag" not in headers:
            raise SystemExit(f"transition failed: {status} {body[:300]!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=30, help="entries of the cumulative listing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tongban-profile-") as tmp:
        db = bench.prepare("sqlite", Path(tmp), "")
        cases = bench.create_cases(db, 2 * args.requests + 20)
        app = create_app(db.engine)
        asyncio.run(fire_all(app, db.token, cases[:20]))  # warm: compiled machine, statements, caches
        n = args.requests
        with Counter() as counter:
            asyncio.run(fire_all(app, db.token, cases[20:20 + n]))
        with PerThread() as profiler:
            asyncio.run(fire_all(app, db.token, cases[20 + n:]))
        db.engine.dispose()
    print(f"{n} transition requests (POST …/triggers/accept), function calls per request")
    for part, calls in counter.calls.items():
        print(f"  {part:<52} {calls / n:8,.0f}")
    stats = profiler.stats()
    print(f"cProfile, {len(profiler.profiles)} threads: {stats.total_calls / n:,.0f} calls per request; "  # type: ignore[attr-defined]
          f"top {args.top} by cumulative time ({n} requests)")
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(args.top)
    print(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
