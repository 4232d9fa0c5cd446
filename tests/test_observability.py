"""What an operator watches: /metrics, the probes, request ids in the logs, the Prefect links."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, free_port
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from api.app import create_app
from core import logs
from core.clock import now
from core.settings import get_settings
from engine.advance import advance
from engine.dashboard import prefect_runs_url
from flows import jobs, outbox
from flows.probe import Probe
from storage import migrate
from storage.db import make_engine
from storage.flow_tables import T_LEASE
from storage.tables import T_OUT

B = "370211"  # the demo's competent region of GGCSWSXK cases forwarded from Jinan


def scrape(client: TestClient | httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(m: dict[Any, float], name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_the_outbox_as_jobs_are_queued_claimed_and_drained(demo: Demo) -> None:
    before = scrape(demo.client)
    assert value(before, "tongban_outbox_depth", region=B, status="pending") == 0  # listed, at 0
    accepts = value(before, "tongban_transitions_total", item="GGCSWSXK", trigger="accept")
    handoffs = value(before, "tongban_jobs_finished_total", job="handoff", outcome="done")
    numbers = []
    for _ in range(2):
        n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=B)["number"]
        with Session(demo.engine) as s:  # a transition whose transaction rolls back counts nothing
            advance(s, n, "accept", demo.actor("王芳"))
            s.rollback()
        assert value(scrape(demo.client), "tongban_transitions_total", item="GGCSWSXK", trigger="accept") == \
            accepts + len(numbers)
        demo.fire("王芳", n, "accept")  # forwarded: a hand-off job in B's outbox
        numbers.append(n)
    queued = scrape(demo.client)
    waiting = demo.count("outbox", region_code=B, status="pending")
    assert waiting >= 2 and value(queued, "tongban_outbox_depth", region=B, status="pending") == waiting
    assert value(queued, "tongban_outbox_oldest_age_seconds", region=B) >= 0
    assert value(queued, "tongban_transitions_total", item="GGCSWSXK", trigger="accept") == accepts + 2
    # Latency by route template, not by case number.
    route = "/api/v1/cases/{number}/triggers/{trigger}"
    assert value(queued, "tongban_http_request_duration_seconds_count", method="POST", route=route,
                 status="200") >= 2
    assert not any(n in str(k) for k in queued for n in numbers)

    # A worker claims both, then dies: running, and once the lease is over, expired.
    claimed = outbox.claim(demo.engine, B, 100, owner="dead-worker")
    assert len(claimed) == waiting
    running = scrape(demo.client)
    assert value(running, "tongban_outbox_depth", region=B, status="running") == waiting
    assert value(running, "tongban_outbox_depth", region=B, status="pending") == 0
    with demo.engine.begin() as conn:
        conn.execute(sa.update(T_LEASE).values(lease_until=now() - timedelta(seconds=1)))
    assert value(scrape(demo.client), "tongban_outbox_expired_leases", region=B) == waiting
    expiries = value(running, "tongban_lease_expiries_total", region=B)

    # Another worker takes the hand-offs over (接件) and runs them; the rest (documents, drawn in
    # worker processes: seconds each) go back to pending untouched.
    handoffs_ids = [j["id"] for j in claimed if j["job"] == "handoff"]
    assert len(handoffs_ids) == 2
    for job in outbox.claim(demo.engine, B, 100, job_ids=handoffs_ids):
        jobs.run(demo.engine, job)
    outbox.release(demo.engine, [j["id"] for j in claimed if j["job"] != "handoff"], owner="dead-worker")
    drained = scrape(demo.client)
    assert value(drained, "tongban_outbox_depth", region=B, status="pending") == waiting - 2
    assert value(drained, "tongban_outbox_depth", region=B, status="running") == 0
    assert value(drained, "tongban_outbox_expired_leases", region=B) == 0
    assert value(drained, "tongban_lease_expiries_total", region=B) == expiries + 2
    assert value(drained, "tongban_jobs_finished_total", job="handoff", outcome="done") == handoffs + 2
    # The rest drained too: the region's depth and age back to 0.
    with demo.engine.begin() as conn:
        conn.execute(sa.update(T_OUT).where(T_OUT.c.region_code == B, T_OUT.c.status == "pending")
                     .values(status="done"))  # as their worker would mark them (their effects are not the point)
    empty = scrape(demo.client)
    assert value(empty, "tongban_outbox_depth", region=B, status="pending") == 0
    assert value(empty, "tongban_outbox_oldest_age_seconds", region=B) == 0


def test_readiness_liveness_and_the_metrics_token(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate.upgrade(engine)
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["schema_revision"] == sorted(migrate.heads())
    with engine.begin() as conn:  # the code was upgraded, the database not yet
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001_initial'"))
    r = client.get("/readyz")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert "tongban db upgrade" in r.json()["detail"]
    assert client.get("/livez").json() == {"status": "ok"}
    # /metrics behind a bearer token when one is configured.
    monkeypatch.setenv("TONGBAN_METRICS_TOKEN", "s3cret-scrape")
    get_settings.cache_clear()
    try:
        client = TestClient(create_app(engine), raise_server_exceptions=False)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"}).status_code == 200
    finally:
        get_settings.cache_clear()


def test_request_ids_reach_the_answer_and_every_log_line(sqlite_demo: Demo, caplog: pytest.LogCaptureFixture) -> None:
    demo = sqlite_demo
    with caplog.at_level(logging.INFO, logger="tongban.access"):
        r = demo.client.get("/api/v1/items", headers=demo.h("王芳", **{"X-Request-ID": "req-42.a"}))
        bad = demo.client.get("/livez", headers={"X-Request-ID": "no spaces\tor tabs"})
        demo.client.get("/api/v1/progress/2026X?code=SECRET123")  # a query code: not for the log
    assert r.headers["x-request-id"] == "req-42.a"
    assert bad.headers["x-request-id"] != "no spaces\tor tabs" and len(bad.headers["x-request-id"]) == 32
    line = next(rec for rec in caplog.records if getattr(rec, "route", None) == "/api/v1/items")
    assert (line.status, line.method, line.path) == (200, "GET", "/api/v1/items")  # type: ignore[attr-defined]
    # The JSON shape: one object per line with the timestamp, the level and the request's id.
    token = logs.request_id.set("req-42.a")
    try:
        out = json.loads(logs.JsonFormatter("api").format(line))
    finally:
        logs.request_id.reset(token)
    assert out["request_id"] == "req-42.a" and out["route"] == "/api/v1/items" and out["status"] == 200
    assert out["ts"].endswith("Z") and out["level"] == "INFO" and out["logger"] == "tongban.access"
    plain = logs.PlainFormatter().format(line)
    assert plain[:4].isdigit() and "route=/api/v1/items" in plain and "status=" not in plain
    assert not any("SECRET123" in logs.PlainFormatter().format(r) for r in caplog.records)
    assert any(getattr(r, "route", None) == "/api/v1/progress/{number}" for r in caplog.records)


def test_the_drainer_probe(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    listening = {"ok": True}
    probe = Probe("worker", engine, lambda: (listening["ok"], {"region": B}))
    port = probe.start(port=free_port())
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        assert http.get("/livez").status_code == 200
        r = http.get("/readyz")
        assert r.status_code == 200 and r.json() == {"status": "ok", "role": "worker", "loop_age_seconds":
                                                    r.json()["loop_age_seconds"], "database": "ok", "region": B}
        assert "tongban_jobs_finished_total" in http.get("/metrics").text
        listening["ok"] = False  # its LISTEN connection dropped
        assert http.get("/readyz").status_code == 503
        probe.last_beat -= get_settings().probe_stale_seconds + 1  # its loop is stuck
        assert http.get("/livez").status_code == 503
        probe.beat()
        assert http.get("/livez").status_code == 200
    finally:
        probe.stop()


def test_prefect_links_filter_the_cases_task_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert prefect_runs_url("370100-20261202-0001") is None  # the default: no Prefect UI configured
    monkeypatch.setenv("TONGBAN_PREFECT_UI_URL", "http://127.0.0.1:4200/")
    get_settings.cache_clear()
    url = prefect_runs_url("370100-20261202-0001")
    assert url is not None and url.startswith("http://127.0.0.1:4200/runs?")
    q = parse_qs(urlsplit(url).query)  # task runs untagged unless asked for: found by their name
    assert q["tab"] == ["task-runs"] and q["task-run-search"] == ["370100-20261202-0001"] and "tag" not in q
    assert q["type"] == ["span"] and int(q["seconds"][0]) < -7 * 86400  # further back than the UI's week
    monkeypatch.setenv("TONGBAN_JOB_TASK_TAGS", "true")
    get_settings.cache_clear()
    try:
        q = parse_qs(urlsplit(prefect_runs_url("370100-20261202-0001") or "").query)
        assert q["tag"] == ["case:370100-20261202-0001"] and "task-run-search" not in q
        monkeypatch.setenv("TONGBAN_PREFECT_UI_URL", "")
        get_settings.cache_clear()
        assert prefect_runs_url("370100-20261202-0001") is None
    finally:
        get_settings.cache_clear()
