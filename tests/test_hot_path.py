"""A clerk's transition request takes one thread hop on SQLite: the route's own.

Each hop hands the request to a pool thread and back and wakes the loop in between; at saturation
on SQLite those hand-offs, not the work, held the writer lock longest. The token is read on the
loop (microseconds in-process), the version header is parsed there, the unit commits on the
route's thread as it returns, and a committed unit closes without another hop. On PostgreSQL the
token read is a round trip, so it takes a thread of its own.
"""

from __future__ import annotations

import anyio.to_thread
import pytest
from conftest import ALL_GGCS, Demo


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
