"""Webhooks: subscriptions over the API, and deliveries to a real HTTP receiver on 127.0.0.1 that is
down for a while (refusing connections, then answering 503), then up: every event arrives at
least once, in feed order, signed, dedupable by its id, with every attempt in the delivery log.
The slow test does it to a real `tongban serve` process with embedded flows, SIGKILLed while a
delivery is in flight and again under load: nothing is lost."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, answers_for, free_port, run_jobs, wait_healthy

from core import clock
from core.settings import ROOT, get_settings
from engine import webhooks
from storage.db import make_engine

SECRET = "a-receiver's-own-secret-0123456789"


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that checks every delivery's signature and records it.

    ``mode``: ``ok`` answers 204, ``503`` answers 503, ``hold`` keeps the next request open until
    ``release`` (then answers 204). ``down()`` closes the listening socket: connections are refused.
    """

    def __init__(self, secret: str = SECRET, wall: Any = time.time) -> None:
        self.port, self.secret, self.wall = free_port(), secret, wall
        self.mode = "ok"
        self.arrivals: list[dict[str, Any]] = []  # every request, in arrival order
        self.bad: list[str] = []  # signature or header problems
        self.held, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tongban"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.check(body, self.headers)
                with receiver.lock:
                    mode = receiver.mode
                    if mode == "hold":
                        receiver.mode = "ok"  # only this one request is held
                status = 503 if mode == "503" else 204
                arrival = {"event": json.loads(body), "status": status, "mode": mode}
                with receiver.lock:
                    receiver.arrivals.append(arrival)
                if mode == "hold":
                    receiver.held.set()
                    receiver.release.wait(60)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the product was killed while we held its request
                    arrival["status"] = None

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def check(self, body: bytes, headers: Any) -> None:
        """What an integrator's receiver does (docs/api/events.md)."""
        ts, sig = headers.get("X-Tongban-Timestamp", ""), headers.get("X-Tongban-Signature", "")
        expected = "sha256=" + hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        event = json.loads(body)
        if not hmac.compare_digest(expected, sig):
            self.bad.append(f"signature of {event.get('id')}")
        if not ts.isdigit() or abs(self.wall() - int(ts)) > 300:
            self.bad.append(f"timestamp {ts!r}")
        if headers.get("Idempotency-Key") != event["id"] or headers.get("X-Tongban-Event-Id") != event["id"]:
            self.bad.append(f"idempotency headers of {event['id']}")

    def answered(self) -> list[dict[str, Any]]:
        """Events this receiver accepted (2xx), in arrival order."""
        with self.lock:
            return [a["event"] for a in self.arrivals if a["status"] is not None and a["status"] < 300]

    def positions(self) -> list[int]:
        with self.lock:
            return [int(a["event"]["cursor"]) for a in self.arrivals]


def feed_ids(client: Any, headers: dict[str, str], base: str = "") -> list[str]:
    out, after = [], "0"
    while True:
        r = client.get(f"{base}/api/v1/events", params={"after": after, "limit": 500}, headers=headers)
        assert r.status_code == 200, r.text
        out += [e["id"] for e in r.json()["items"]]
        if r.json()["next_cursor"] == after:
            return out
        after = r.json()["next_cursor"]


def subscribe(demo: Demo, who: str, url: str, **body: Any) -> dict[str, Any]:
    r = demo.client.post("/api/v1/webhooks", json={"url": url, **body}, headers=demo.h(who))
    assert r.status_code == 201, r.text
    return r.json()


def drive(demo: Demo, rounds: int = 20) -> None:
    """What the embedded drainer does every cycle: queue the due deliveries, run the jobs."""
    for _ in range(rounds):
        counts = webhooks.pump(demo.engine)
        run_jobs(demo.engine)
        if not counts["queued"]:
            return


def log_of(demo: Demo, who: str, hook: int) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        r = demo.client.get(f"/api/v1/webhooks/{hook}/deliveries", params={"limit": 7, **({"cursor": cursor} if cursor
                            else {})}, headers=demo.h(who))
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out[::-1]  # oldest first
        assert r.headers["link"] == f'</api/v1/webhooks/{hook}/deliveries?limit=7&cursor={cursor}>; rel="next"'


# --- the subscription API --------------------------------------------------------------------------

def test_subscriptions_are_made_listed_read_and_deleted_by_their_owner_only(demo: Demo) -> None:
    made = subscribe(demo, "陈静", "https://exchange.example.gov.cn/tongban?src=pd", item="GGCSWSXK")
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40  # generated, shown this once
    assert made["item"] == "GGCSWSXK" and made["failures"] == 0 and made["created_at"].endswith("+08:00")
    own = subscribe(demo, "陈静", "http://127.0.0.1:9/x", secret=SECRET)
    assert own["secret"] is None  # the caller's own secret is not echoed
    listed = demo.client.get("/api/v1/webhooks", headers=demo.h("陈静")).json()
    assert [h["id"] for h in listed["items"]] == [made["id"], own["id"]] and listed["next_cursor"] is None
    assert all("secret" not in h for h in listed["items"])
    page = demo.client.get("/api/v1/webhooks", params={"limit": 1}, headers=demo.h("陈静"))
    assert page.json()["next_cursor"] == str(made["id"]) and 'rel="next"' in page.headers["link"]
    r = demo.client.get(f"/api/v1/webhooks/{made['id']}", headers=demo.h("陈静"))
    assert r.status_code == 200 and r.json()["url"] == made["url"] and "secret" not in r.json()
    # Someone else's subscription is as unknown as one that never was.
    for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/deliveries")]:
        r = demo.client.request(method, f"/api/v1/webhooks/{made['id']}{path}", headers=demo.h("王芳"))
        assert r.status_code == 404, (method, path, r.text)
    assert demo.client.get("/api/v1/webhooks", headers=demo.h("王芳")).json()["items"] == []
    assert demo.client.delete(f"/api/v1/webhooks/{made['id']}", headers=demo.h("陈静")).status_code == 204
    assert demo.client.get(f"/api/v1/webhooks/{made['id']}", headers=demo.h("陈静")).status_code == 404
    assert demo.client.delete(f"/api/v1/webhooks/{made['id']}", headers=demo.h("陈静")).status_code == 404
    # The secret rests sealed: neither it nor the generated one is in the database as text.
    with demo.engine.connect() as conn:
        sealed = conn.execute(sa.text("SELECT secret_sealed FROM webhooks")).scalars().all()
    assert len(sealed) == 2 and not any(SECRET in s or made["secret"] in s for s in sealed)


@pytest.mark.parametrize("url", [
    "ftp://example.gov.cn/x", "file:///etc/passwd", "http://user:pw@example.gov.cn/", "http://token@example.gov.cn/",
    "https://example.gov.cn/#frag", "http://exa mple.gov.cn/", "http://example.gov.cn:99999/", "http:///nohost",
    "http://[::1/", "javascript:alert(1)",
])
def test_addresses_other_than_plain_http_urls_are_refused(demo: Demo, url: str) -> None:
    r = demo.client.post("/api/v1/webhooks", json={"url": url}, headers=demo.h("陈静"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("url"), r.text
    assert demo.count("webhooks") == 0


def test_allowed_hosts_and_who_may_subscribe(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "webhook_allowed_hosts", ["exchange.example.gov.cn", ".sd.gov.cn"])
    assert subscribe(demo, "陈静", "https://exchange.example.gov.cn/e")["id"]
    assert subscribe(demo, "陈静", "https://hub.jn.sd.gov.cn/e")["id"]
    r = demo.client.post("/api/v1/webhooks", json={"url": "http://169.254.169.254/latest"}, headers=demo.h("陈静"))
    assert r.status_code == 422 and "TONGBAN_WEBHOOK_ALLOWED_HOSTS" in r.json()["detail"]
    r = demo.client.post("/api/v1/webhooks", json={"url": "https://exchange.example.gov.cn/e"},
                         headers=demo.h("孙设计"))
    assert r.status_code == 403  # a designer sees no case: nothing to subscribe to
    monkeypatch.setattr(get_settings(), "webhook_max_per_clerk", 2)
    r = demo.client.post("/api/v1/webhooks", json={"url": "https://exchange.example.gov.cn/3"}, headers=demo.h("陈静"))
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")


# --- delivering --------------------------------------------------------------------------------------

def test_delivery_survives_the_receiver_down_then_failing_then_up(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Down (connection refused), then 503, then up: every event arrives, once per 2xx, in feed
    order, signed; the cursor moves only after a 2xx; each failure waits out a doubling backoff."""
    monkeypatch.setattr(get_settings(), "webhook_backoff_seconds", 2.0)
    monkeypatch.setattr(get_settings(), "webhook_backoff_max_seconds", 5.0)
    # Not up yet: connections are refused. Its clock is the product's (frozen here).
    receiver = Receiver(wall=lambda: clock.now().timestamp())
    start = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    with clock.frozen(start):
        hook = subscribe(demo, "陈静", receiver.url, secret=SECRET)
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        demo.fire("陈静", case["number"], "accept", case["version"])
        demo.create("王芳", "GGCSWSXK", ALL_GGCS)  # another counter's: never sent to 陈静's subscription
        drive(demo)
        state = demo.client.get(f"/api/v1/webhooks/{hook['id']}", headers=demo.h("陈静")).json()
        assert state["failures"] == 1 and state["delivered_through"] == hook["delivered_through"]
        assert state["last_status"] is None and "ConnectError" in state["last_error"]
        assert datetime.fromisoformat(state["next_attempt_at"]) == start + timedelta(seconds=2)
        drive(demo)  # still backing off: nothing is attempted
        assert len(log_of(demo, "陈静", hook["id"])) == 1
        clock.advance(timedelta(seconds=2))
        drive(demo)  # the second attempt fails too; the next waits twice as long
        assert datetime.fromisoformat(demo.client.get(f"/api/v1/webhooks/{hook['id']}", headers=demo.h("陈静")).json()[
            "next_attempt_at"]) == start + timedelta(seconds=6)
        receiver.up()
        receiver.mode = "503"
        clock.advance(timedelta(seconds=4))
        drive(demo)
        clock.advance(timedelta(seconds=5))  # the backoff stops doubling at its maximum
        drive(demo)
        assert [a["status"] for a in receiver.arrivals] == [503, 503] and receiver.answered() == []
        receiver.mode = "ok"
        demo.fire("陈静", case["number"], "start_review")  # more events while it was failing
        clock.advance(timedelta(seconds=5))
        drive(demo)
    try:
        expected = feed_ids(demo.client, demo.h("陈静"))
        # The case's whole history: intake, accept, start_review and the notices they issued.
        history = demo.client.get(f"/api/v1/cases/{case['number']}/history", headers=demo.h("陈静")).json()["items"]
        assert len(expected) == len(history) >= 3
        assert [e["id"] for e in receiver.answered()] == expected  # all, in order, each once
        assert receiver.bad == []
        log = log_of(demo, "陈静", hook["id"])
        first = expected[0]
        assert [(d["event_id"], d["attempt"], d["status_code"]) for d in log] == [
            (first, 1, None), (first, 2, None), (first, 3, 503), (first, 4, 503), (first, 5, 204),
            *[(e, 1, 204) for e in expected[1:]]]
        assert "ConnectError" in log[0]["error"] and log[2]["error"] == "HTTP 503" and log[4]["error"] is None
        state = demo.client.get(f"/api/v1/webhooks/{hook['id']}", headers=demo.h("陈静")).json()
        assert state["failures"] == 0 and state["next_attempt_at"] is None
        assert state["delivered_through"] == receiver.answered()[-1]["cursor"]
        # Nothing left to send: the pump queues no job, and every delivery job is done.
        assert webhooks.pump(demo.engine)["queued"] == 0
        assert demo.count("outbox", job="deliver_webhook") == demo.count("job_effects", job="deliver_webhook")
    finally:
        receiver.down()


def test_deliveries_follow_filters_scopes_and_deletion(demo: Demo) -> None:
    receiver = Receiver().up()
    try:
        sup = subscribe(demo, "赵督查", receiver.url, secret=SECRET, kind="intake", start="beginning")
        mine = subscribe(demo, "王芳", receiver.url, secret=SECRET)
        a = demo.create("陈静", "GGCSWSXK", ALL_GGCS)  # 浦东: the supervisor's region, not 王芳's counter
        demo.fire("陈静", a["number"], "accept", a["version"])
        demo.create("黄丽", "GGCSWSXK", ALL_GGCS)  # 南沙: in neither's scope
        drive(demo)
        assert [(e["case"], e["kind"]) for e in receiver.answered()] == [(a["number"], "intake")]
        # The owner's cursor moved past what they may not see without sending anything.
        top = feed_ids(demo.client, demo.h("赵督查"))
        state = demo.client.get(f"/api/v1/webhooks/{mine['id']}", headers=demo.h("王芳")).json()
        with demo.engine.connect() as conn:  # the feed's position is the newest history event's
            newest = conn.execute(sa.text("SELECT max(id) FROM history")).scalar_one()
        assert int(state["delivered_through"]) == newest and log_of(demo, "王芳", mine["id"]) == []
        a_history = demo.client.get(f"/api/v1/cases/{a['number']}/history", headers=demo.h("陈静")).json()["items"]
        assert len(top) == len(a_history) >= 2  # 南沙's case is not in the supervisor's feed
        demo.client.delete(f"/api/v1/webhooks/{sup['id']}", headers=demo.h("赵督查"))
        demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        drive(demo)
        assert len(receiver.answered()) == 1  # deleted: nothing more
    finally:
        receiver.down()


def test_a_delivery_job_whose_worker_died_sends_from_the_cursor_again(demo: Demo,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker dies holding the job: no second job is queued beside it; once its lease is over
    the job is claimed again. A worker that fails after the receiver accepted an event, before
    the cursor moved: the retried job sends that event again (at least once), with the same id."""
    from flows import outbox

    monkeypatch.setattr(get_settings(), "job_retry_base_seconds", 0.0)  # the failed job retried at once
    receiver = Receiver().up()
    try:
        hook = subscribe(demo, "陈静", receiver.url, secret=SECRET)
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        assert webhooks.pump(demo.engine)["queued"] == 1
        with demo.engine.connect() as conn:
            job = conn.execute(sa.text("SELECT id FROM outbox WHERE job = 'deliver_webhook'")).scalar_one()
        assert outbox.claim(demo.engine, None, 10, job_ids=[job])  # … and its worker is gone
        assert webhooks.pump(demo.engine)["queued"] == 0  # the job is still open: not queued twice
        run_jobs(demo.engine)
        assert receiver.arrivals == []  # leased: nobody else runs it
        with demo.engine.begin() as conn:
            conn.execute(sa.text("UPDATE job_leases SET lease_until = :t"), {"t": datetime(2000, 1, 1, tzinfo=UTC)})
        record, failed = webhooks._record, []

        def fail_once(*args: Any) -> bool:
            if not failed:
                failed.append(True)
                raise sa.exc.OperationalError("UPDATE webhooks", {}, Exception("the database went away"))
            return record(*args)

        monkeypatch.setattr(webhooks, "_record", fail_once)
        with pytest.raises(sa.exc.OperationalError):  # the job fails and goes back to pending
            run_jobs(demo.engine)
        run_jobs(demo.engine)
        ids = [e["id"] for e in receiver.answered()]
        assert ids == [f"{case['number']}-1", f"{case['number']}-1"]
        state = demo.client.get(f"/api/v1/webhooks/{hook['id']}", headers=demo.h("陈静")).json()
        assert state["delivered_through"] == receiver.answered()[-1]["cursor"] and state["failures"] == 0
        with demo.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT status, attempts FROM outbox WHERE id = :j"), {"j": job}).one() == (
                "done", 3)
    finally:
        receiver.down()


# --- the product SIGKILLed mid-delivery ---------------------------------------------------------------

ITEM = "CBWLSXK"
MATERIALS = {"application": "received", "premises_proof": "received", "operator_id": "received"}
PATH = ["accept", "start_review", "approve"]


class Product:
    """`tongban serve` with embedded flows, on SQLite, in a process group of its own."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp / 'product.db'}",
                    "TONGBAN_DATA_DIR": str(tmp), "TONGBAN_OBJECT_DIR": str(tmp / "objects"),
                    "TONGBAN_JOB_LEASE_SECONDS": "4", "TONGBAN_FLOWS_POLL_SECONDS": "0.3",
                    "TONGBAN_WEBHOOK_BACKOFF_SECONDS": "0.3", "TONGBAN_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
                    "TONGBAN_WEBHOOK_TIMEOUT_SECONDS": "1.5"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(self.port)], cwd=ROOT,
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if not wait_healthy(f"{self.base}/healthz", 90):
            raise RuntimeError("server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _walk_cases(base: str, token: str, count: int, errors: list[str]) -> None:
    """A counter client: intake and the clerk's steps, retried through crashes with the same key."""
    headers = {"Authorization": f"Bearer {token}"}

    def call(method: str, url: str, **kw: Any) -> httpx.Response:
        all_headers = {**headers, "Idempotency-Key": str(uuid.uuid4()), **kw.pop("extra", {})}
        for _ in range(600):
            try:
                return httpx.request(method, base + url, headers=all_headers, timeout=5, **kw)
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("no answer")

    for _ in range(count):
        r = call("POST", "/api/v1/cases", json={"item_code": ITEM, "materials": MATERIALS,
                                                "situation": answers_for(ITEM, MATERIALS), "applicant": {
            "name": "推送测试申请人", "address": "上海市浦东新区世纪大道100号", "phone": "13800000000"}})
        if r.status_code != 201:
            errors.append(r.text)
            return
        version = r.json()["version"]
        for trigger in PATH:
            r = call("POST", f"/api/v1/cases/{r.json()['number']}/triggers/{trigger}",
                     extra={"If-Match": f'"{version}"'})
            if r.status_code != 200:
                errors.append(f"{trigger}: {r.status_code} {r.text}")
                return
            version = r.json()["version"]


def _until(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_mid_delivery_and_under_load_loses_no_event(tmp_path: Path) -> None:
    product, receiver = Product(tmp_path), Receiver()
    product.start()
    try:
        tokens = {t["name"]: t["token"] for t in json.loads((tmp_path / "demo-tokens.json").read_text())}
        h = {"Authorization": f"Bearer {tokens['陈静']}"}
        r = httpx.post(f"{product.base}/api/v1/webhooks", json={"url": receiver.url, "secret": SECRET}, headers=h)
        assert r.status_code == 201, r.text
        hook = r.json()["id"]
        errors: list[str] = []
        clients = [threading.Thread(target=_walk_cases, args=(product.base, tokens["陈静"], 4, errors))
                   for _ in range(2)]
        for t in clients:
            t.start()
        # Down: the product's attempts are refused. Then 503s. Both logged, neither moves the cursor.
        _until(lambda: _log(product, h, hook, lambda d: d["status_code"] is None), 60, "a refused attempt")
        receiver.up()
        receiver.mode = "503"
        _until(lambda: len(receiver.arrivals) >= 2, 60, "503 answers")
        # Mid-delivery: the next request is held open, and the product is killed while it waits.
        receiver.mode = "hold"
        assert receiver.held.wait(60), "no delivery arrived to hold"
        held = receiver.arrivals[-1]["event"]["id"]
        product.kill()
        receiver.release.set()
        product.start()
        # Under load: killed again once more events went out.
        count = len(receiver.arrivals)
        _until(lambda: len(receiver.arrivals) >= count + 5, 120, "deliveries after the restart")
        product.kill()
        product.start()
        for t in clients:
            t.join(300)
        assert not errors, errors
        engine = make_engine(product.env["TONGBAN_DATABASE_URL"])

        def settled() -> bool:
            with engine.connect() as conn:
                open_jobs = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE status <> 'done'")).scalar_one()
                states = set(conn.execute(sa.text("SELECT state FROM cases")).scalars())
            if open_jobs or states != {"issued"}:
                return False
            expected = feed_ids(httpx, h, product.base)
            return {e["id"] for e in receiver.answered()} >= set(expected)

        _until(settled, 240, "every case issued by the flows and every event delivered")
        expected = feed_ids(httpx, h, product.base)
        answered = [e["id"] for e in receiver.answered()]
    finally:
        product.kill()
        receiver.down()
    with engine.connect() as conn:
        log = conn.execute(sa.text("SELECT status_code, error FROM webhook_deliveries")).all()
        total = conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()
    assert receiver.bad == []
    assert len(expected) == total >= 8 * 5  # every event of the 8 cases: the clerk's and the flows'
    assert set(answered) == set(expected)  # every event arrived; nothing unknown
    assert receiver.positions() == sorted(receiver.positions())  # in feed order, retries included
    assert list(dict.fromkeys(answered)) == expected
    # Accepted twice: at most the event in flight at each kill. The held one was sent again.
    assert len(answered) - len(set(answered)) <= 2
    assert sum(1 for a in receiver.arrivals if a["event"]["id"] == held) >= 2
    assert any(s is None and "ConnectError" in (e or "") for s, e in log)
    assert any(s == 503 for s, _ in log) and sum(1 for s, _ in log if s == 204) >= len(expected)


def _log(product: Product, headers: dict[str, str], hook: int, match: Any) -> bool:
    r = httpx.get(f"{product.base}/api/v1/webhooks/{hook}/deliveries", headers=headers, params={"limit": 200})
    return r.status_code == 200 and any(match(d) for d in r.json()["items"])
