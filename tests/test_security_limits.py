"""The progress query's limits cannot be spoofed: forwarded headers count only from trusted
proxies, each case number has a budget of wrong codes whoever sends them (then 429 with
Retry-After, and one notice to the supervisor per lockout), and the per-client limiter's memory
is bounded. The floods go through real uvicorn servers configured as ``tongban serve`` does
(``cli.main.uvicorn_options``), the last one through the ``tongban serve`` process itself."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from core import clock
from core.settings import ROOT, get_settings
from storage.db import make_engine
from tests.conftest import ALL_FGS, Demo, answers_for, free_port, serving, wait_healthy

WRONG = "WRONGCODE9"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set TONGBAN_* variables for one test (the settings are cached: cleared before and after)."""
    def put(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"TONGBAN_{name.upper()}", value)
        get_settings.cache_clear()

    yield put
    monkeypatch.undo()
    get_settings.cache_clear()


# -- forwarded headers -----------------------------------------------------------------------------
def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    from api.clientaddr import TrustedProxies, resolve

    trusted = TrustedProxies(["127.0.0.2", "10.0.0.0/8"])

    def who(peer: str, **headers: str) -> tuple[Any, Any]:
        raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
        return resolve(peer, raw, trusted)

    # An untrusted peer's headers are ignored whatever they say; so are everyone's when none is trusted.
    assert who("127.0.0.1", x_forwarded_for="203.0.113.9", x_forwarded_proto="https") == (None, None)
    assert resolve("127.0.0.2", [(b"x-forwarded-for", b"203.0.113.9")], TrustedProxies([])) == (None, None)
    # From a trusted proxy: the rightmost address that is not a trusted proxy is the client; what
    # the client wrote itself (to the left) is not believed.
    assert who("127.0.0.2", x_forwarded_for="203.0.113.9")[0] == ("203.0.113.9", 0)
    assert who("127.0.0.2", x_forwarded_for="6.6.6.6, 198.51.100.7, 10.1.2.3")[0] == ("198.51.100.7", 0)
    assert who("::ffff:127.0.0.2", x_forwarded_for="198.51.100.7:4711")[0] == ("198.51.100.7", 4711)
    assert who("127.0.0.2", x_forwarded_for="garbage, 198.51.100.7")[0] == ("198.51.100.7", 0)
    assert who("127.0.0.2", x_forwarded_for="198.51.100.7, garbage") == (None, None)  # keep the peer
    assert who("127.0.0.2", x_forwarded_for="10.0.0.5, 10.0.0.6")[0] == ("10.0.0.5", 0)  # all proxies
    assert who("127.0.0.2", x_forwarded_for="203.0.113.9", x_forwarded_proto="https")[1] == "https"
    # RFC 7239 Forwarded is preferred (a proxy writing it may pass a client's X-Forwarded-For through).
    assert who("127.0.0.2", forwarded='for=6.6.6.6, for="[2001:db8::17]:4711";proto=https;by=10.0.0.1',
               x_forwarded_for="6.6.6.6") == (("2001:db8::17", 4711), "https")
    assert who("127.0.0.2", forwarded="for=unknown") == (None, None)
    assert who("127.0.0.2", forwarded='for="_hidden", for=198.51.100.7')[0] == ("198.51.100.7", 0)


# -- memory of the per-client limiter --------------------------------------------------------------
def test_limiter_memory_is_bounded_for_20000_clients() -> None:
    """The old limiter kept a deque per client forever (20,000 clients: about 19 MB)."""
    from api.routes.public import SlidingWindow

    limiter = SlidingWindow()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(20_000):
        assert limiter.allow(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 30)
    grown = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown < 4 * 1024 * 1024, f"{grown / 1e6:.1f} MB for 20,000 clients"
    assert len(limiter) == get_settings().rate_limit_max_keys == 10_000


def test_limiter_forgets_idle_clients_and_tells_how_long_to_wait() -> None:
    from engine.ratelimit import BoundedWindows

    now = [1000.0]
    limiter = BoundedWindows(60, max_keys=100, clock=lambda: now[0])
    for i in range(50):
        limiter.hit(f"idle-{i}", 30)
    assert [limiter.hit("busy", 30) for _ in range(30)] == [None] * 30
    wait = limiter.hit("busy", 30)
    assert wait is not None and 1 <= wait <= 120
    now[0] += 121  # two windows later: nothing idle is kept
    assert limiter.hit("new", 30) is None and len(limiter) == 1
    # A budget frees up as the previous window fades: half of it a minute and a half later.
    for _ in range(30):
        limiter.hit("again", 30)
    now[0] += 90
    allowed = sum(limiter.hit("again", 30) is None for _ in range(30))
    assert 14 <= allowed <= 16


# -- the per-case budget ---------------------------------------------------------------------------
def test_wrong_codes_lock_the_case_for_everyone_then_it_reopens(demo: Demo, settings_env: Any) -> None:
    settings_env(progress_rate_per_minute="10000")  # this test is about the per-case budget only
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    number, code = case["number"], case["query_code"]
    url = f"/api/v1/progress/{number}"
    with clock.frozen(clock.now()):
        assert demo.client.get(url, params={"code": code}).status_code == 200  # successes cost nothing
        # Wrong codes by query and by withdrawal count against the same budget.
        wrong = [demo.client.get(url, params={"code": WRONG}).status_code for _ in range(5)]
        wrong += [demo.client.post(f"{url}/withdrawal", json={"code": WRONG, "reason": "不办了"}).status_code
                  for _ in range(5)]
        assert wrong == [404] * 10
        # Locked: the right code too, on the API and on the page; a 429 problem with Retry-After.
        r = demo.client.get(url, params={"code": code})
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "/problems/query-locked" and r.json()["status"] == 429
        assert 3500 <= int(r.headers["retry-after"]) <= 3600 and "分钟后再试" in r.json()["detail"]
        assert r.headers["ratelimit"] == f'"query-locked";r=0;t={r.headers["retry-after"]}'
        page = demo.client.post("/progress", data={"number": number, "code": code})
        assert page.status_code == 429 and "查询已暂停" in page.text and int(page.headers["retry-after"]) > 0
        withdraw = demo.client.post(f"{url}/withdrawal", json={"code": code, "reason": "不办了"})
        assert withdraw.status_code == 429 and demo.count("cases", number=number, status_code=1) == 1  # not withdrawn
        for _ in range(20):  # more guesses while locked: neither counted nor notified again
            assert demo.client.get(url, params={"code": WRONG}).status_code == 429
        assert demo.count("notifications", audience="supervisor", kind="query_locked") == 1
        with demo.engine.connect() as conn:
            message = conn.execute(sa.text("SELECT message FROM notifications WHERE kind = 'query_locked'")
                                   ).scalar_one()
        assert number in message and "济南市政务服务中心跨域通办专窗" in message and "10 次" in message
        # After the lockout the right code works again; a new budget starts.
        clock.advance(timedelta(seconds=3601))
        assert demo.client.get(url, params={"code": code}).status_code == 200
        assert demo.client.get(url, params={"code": WRONG}).status_code == 404
        # A second lockout is a second notice.
        for _ in range(9):
            demo.client.get(url, params={"code": WRONG})
        assert demo.client.get(url, params={"code": code}).status_code == 429
        assert demo.count("notifications", audience="supervisor", kind="query_locked") == 2


def test_an_unknown_number_answers_exactly_like_a_locked_case(demo: Demo, settings_env: Any) -> None:
    """Locking only real cases would tell which case numbers exist."""
    settings_env(progress_rate_per_minute="10000")
    number = demo.create("王芳", "FGSFZRBG", ALL_FGS)["number"]
    unknown = number[:-5] + f"{secrets.randbelow(10_000) + 90_000}"  # the unknown budget is per process
    answers = {}
    for n in (number, unknown):
        got = [demo.client.get(f"/api/v1/progress/{n}", params={"code": WRONG}) for _ in range(11)]
        assert [r.status_code for r in got] == [404] * 10 + [429]
        answers[n] = [(r.status_code, r.json()["title"], r.json()["detail"]) for r in got]
    assert answers[number] == answers[unknown]


# -- floods through real servers -------------------------------------------------------------------
@contextmanager
def cli_configured_server(app: Any) -> Iterator[str]:
    """uvicorn in a thread with the options ``tongban serve`` gives it (host, port, proxy handling)."""
    from cli.main import uvicorn_options

    options = uvicorn_options("127.0.0.1", free_port(), 1)
    for bound in ("host", "port", "workers"):  # serving() binds its own socket, in one process
        del options[bound]
    with serving(app, **options) as url:
        yield url


def _from(address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 is this machine)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def flood(client: httpx.Client, url: str, count: int, **params: str) -> list[httpx.Response]:
    """``count`` wrong codes, each from another X-Forwarded-For address."""
    return [client.get(url, params=params or {"code": WRONG},
                       headers={"X-Forwarded-For": f"198.18.{i >> 8 & 255}.{i & 255}"}) for i in range(count)]


def assert_limited_within_budget(answers: list[httpx.Response], budget: int = 10) -> None:
    codes = [r.status_code for r in answers]
    assert codes.count(404) <= budget and codes.count(200) == 0, f"{codes.count(404)} guesses got through"
    first = codes.index(429)
    assert first <= budget, f"the first 429 came after {first} guesses"
    assert answers[first].json()["type"] == "/problems/query-locked"
    for r in answers[first:]:
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1 and r.json()["status"] == 429


def test_rotated_forwarded_for_is_limited_per_case_and_only_trusted_proxies_count(
        sqlite_demo: Demo, settings_env: Any) -> None:
    """127.0.0.2 is the trusted proxy; 127.0.0.1 is a client writing X-Forwarded-For itself."""
    from api.app import create_app

    settings_env(trusted_proxies="127.0.0.2")
    first = sqlite_demo.create("王芳", "FGSFZRBG", ALL_FGS)
    second = sqlite_demo.create("王芳", "FGSFZRBG", ALL_FGS)
    with cli_configured_server(create_app(sqlite_demo.engine)) as base, \
            _from("127.0.0.1") as direct, _from("127.0.0.2") as proxy:
        # Addresses rotated by the client itself: one client, one budget, and the case's (after 30
        # the client's own budget answers; the process test below sends 2,000 of these too).
        assert_limited_within_budget(flood(direct, f"{base}/api/v1/progress/{first['number']}", 100))
        # 400 clients behind the trusted proxy, each well within its own budget: the case's budget
        # stops them (test_tongban_serve_limits_a_rotated_flood sends 2,000).
        assert_limited_within_budget(flood(proxy, f"{base}/api/v1/progress/{second['number']}", 400))
        assert sqlite_demo.count("notifications", kind="query_locked") == 2  # one per case
        # Behind the proxy, clients have budgets of their own (30 a minute; unknown numbers here).
        a = [proxy.get(f"{base}/api/v1/progress/X{i}", params={"code": WRONG},
                       headers={"X-Forwarded-For": "192.0.2.1"}).status_code for i in range(31)]
        assert a == [404] * 30 + [429]
        assert proxy.get(f"{base}/api/v1/progress/X99", params={"code": WRONG},
                         headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 404
        # A client prepending an address of its own is still itself.
        r = proxy.get(f"{base}/api/v1/progress/X98", params={"code": WRONG},
                      headers={"X-Forwarded-For": "192.0.2.77, 192.0.2.1"})
        assert r.status_code == 429 and r.json()["type"] == "/problems/rate-limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60


def test_tongban_serve_limits_a_rotated_flood(tmp_path: Path) -> None:
    """The product's own command, default budgets, trusting 127.0.0.2 only."""
    port = free_port()
    env = {"TONGBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "TONGBAN_DATA_DIR": str(tmp_path),
           "TONGBAN_TRUSTED_PROXIES": "127.0.0.2", "PATH": "/usr/bin:/bin"}
    log = (tmp_path / "serve.log").open("w+", encoding="utf-8")  # a pipe nobody reads would fill up with
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port), "--no-flows", "--standalone"],
                            cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)  # the access log's lines
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(f"{base}/healthz", 90, interval=0.2), "server did not start"
        token = json.loads((tmp_path / "demo-tokens.json").read_text(encoding="utf-8"))[0]["token"]
        with _from("127.0.0.1") as direct, _from("127.0.0.2") as proxy:
            made = [direct.post(f"{base}/api/v1/cases", headers={"Authorization": f"Bearer {token}"},
                                json={"item_code": "FGSFZRBG", "applicant": {"name": "测试申请人", "kind": "company"},
                                      "materials": ALL_FGS, "situation": answers_for("FGSFZRBG", ALL_FGS)}
                                ).json() for _ in range(2)]
            assert_limited_within_budget(flood(direct, f"{base}/api/v1/progress/{made[0]['number']}", 2000))
            assert_limited_within_budget(flood(proxy, f"{base}/api/v1/progress/{made[1]['number']}", 2000))
            # Locked for everyone: the right code too.
            r = proxy.get(f"{base}/api/v1/progress/{made[1]['number']}", params={"code": made[1]["query_code"]},
                          headers={"X-Forwarded-For": "192.0.2.50"})
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 3000
            assert direct.get(f"{base}/healthz").status_code == 200  # the server itself is fine
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.seek(0)
        err = log.read()
        log.close()
    assert "Traceback" not in err, err[-3000:]
    engine = make_engine(env["TONGBAN_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT c.number, n.audience FROM notifications n JOIN cases c ON c.id = n.case_id "
                                    "WHERE n.kind = 'query_locked'")).all()
    engine.dispose()
    assert sorted(rows) == sorted((m["number"], "supervisor") for m in made)  # once per case
