"""Flows in embedded mode: the outbox drained in-process through Prefect, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ALL_FGS, ALL_GGCS, Demo
from PIL import Image

from storage.db import session_scope


@pytest.fixture(scope="module", autouse=True)
def prefect_home() -> Iterator[None]:
    """A private, ephemeral Prefect API for this module (started on first flow run)."""
    with tempfile.TemporaryDirectory() as home:
        old = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_URL")}
        os.environ["PREFECT_HOME"] = home
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.pop("PREFECT_API_URL", None)
        yield
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def drainer(demo: Demo, tmp_path: Path):  # type: ignore[no-untyped-def]
    from core.settings import get_settings
    from flows.embedded import EmbeddedDrainer
    from storage.object_factory import get_store

    get_settings().object_dir = tmp_path / "objects"  # this test's evidence store
    get_store.cache_clear()
    d = EmbeddedDrainer(demo.engine, poll_seconds=0.2)
    yield d
    d.stop()


def rows(demo: Demo, sql: str, **params: object) -> list[sa.Row]:
    with demo.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def state_of(demo: Demo, number: str) -> str:
    return rows(demo, "SELECT state FROM cases WHERE number = :n", n=number)[0][0]


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    done = threading.Event()
    for _ in range(int(timeout / 0.2)):
        if predicate():
            return
        done.wait(0.2)
    raise AssertionError("timed out")


def test_approved_case_gets_its_certificate_and_moves_on_without_a_manual_step(
        demo: Demo, drainer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    applicant = {"name": "青岛某某书店有限公司", "kind": "company", "phone": "13800138000",
                 "address": "山东省青岛市黄岛区长江中路 1 号"}
    case = demo.create("陈静", "CBWLSXK", {"application": "received", "premises_proof": "received",
                                          "operator_id": "received"}, applicant=applicant)
    n = case["number"]
    for trigger in ("accept", "start_review", "approve"):
        demo.fire("陈静", n, trigger)
    drainer.start()  # like `tongban serve`: a background thread drains the outbox
    wait_for(lambda: state_of(demo, n) == "issued")
    certs = rows(demo, "SELECT c.number, c.bucket, c.object_key, c.sha256 FROM certificates c "
                       "JOIN cases k ON k.id = c.case_id WHERE k.number = :n", n=n)
    assert len(certs) == 1
    number, bucket, key, sha = certs[0]
    from engine.scans import read_evidence

    pdf = tmp_path / "cert.pdf"
    pdf.write_bytes(b"".join(read_evidence(bucket, key)))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    # The PDF renders the Chinese text: the page as PNG is not blank.
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-singlefile", str(pdf), str(tmp_path / "p")],
                   check=True)
    img = Image.open(tmp_path / "p.png").convert("L")
    dark = sum(1 for px in img.getdata() if px < 128)
    assert dark > 0.005 * img.width * img.height
    # The follow-up (issue → create_waybill) ran too: the result is on its way by mail.
    wait_for(lambda: rows(demo, "SELECT count(*) FROM waybills")[0][0] == 1)
    history = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("陈静")).json()["items"]
    issue = next(e for e in history if e["trigger"] == "issue")
    assert issue["actor_name"] == "系统" and number in issue["comment"]
    page = demo.client.get(f"/verify/{number}")
    assert page.status_code == 200 and "真实有效" in page.text and 'lang="zh-CN"' in page.text
    assert demo.client.get("/verify/FAKE-0001").status_code == 404
    listed = demo.client.get(f"/api/v1/cases/{n}/certificates", headers=demo.h("陈静")).json()
    assert [c["number"] for c in listed["items"]] == [number]
    got = demo.client.get(listed["items"][0]["pdf"], headers=demo.h("陈静"))
    assert got.status_code == 200 and got.content == pdf.read_bytes()


def test_replayed_and_retried_jobs_never_repeat_an_effect(demo: Demo, drainer) -> None:  # type: ignore[no-untyped-def]
    from flows import jobs
    from flows.outbox import claim

    case = demo.create("陈静", "CBWLSXK", {"application": "received", "premises_proof": "received",
                                          "operator_id": "received"})
    n = case["number"]
    for trigger in ("accept", "start_review", "approve"):
        demo.fire("陈静", n, trigger)
    drainer.drain_until_idle()
    assert state_of(demo, n) == "issued"
    job = rows(demo, "SELECT id FROM outbox WHERE job = 'issue_certificate'")[0][0]
    # Replay: the job is put back to pending (as after a lost acknowledgement) and drained again.
    with demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET status = 'pending' WHERE id = :j"), {"j": job})
    (claimed,) = claim(demo.engine, None, 10, job_ids=[job])
    assert jobs.run(demo.engine, claimed) == {"replay": True}
    assert demo.count("certificates") == 1 and demo.count("job_effects", job_id=job) == 1
    assert rows(demo, "SELECT status, attempts FROM outbox WHERE id = :j", j=job)[0] == ("done", 2)


def test_each_job_is_found_in_prefect_under_its_case_without_a_slot_per_task_run(
        demo: Demo, drainer) -> None:  # type: ignore[no-untyped-def]
    # On the embedded API a tagged task run costs a concurrency-slot lease round trip: the tags
    # go on the flow run, once per batch, and the task run's name carries the case.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    case = demo.create("陈静", "CBWLSXK", {"application": "received", "premises_proof": "received",
                                          "operator_id": "received"})
    n = case["number"]
    for trigger in ("accept", "start_review", "approve"):
        demo.fire("陈静", n, trigger)
    drainer.drain_until_idle()
    assert state_of(demo, n) == "issued"
    with get_client(sync_client=True) as client:
        def completed_run() -> list:  # type: ignore[type-arg]
            runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(
                any_=[f"{n} · issue_certificate"])), limit=5, sort=TaskRunSort.EXPECTED_START_TIME_DESC)
            return [r for r in runs if r.state is not None and r.state.is_completed()]

        wait_for(lambda: completed_run())  # task-run states reach the API as events
        task_run = completed_run()[0]  # the newest: the module's databases share one Prefect API
        assert task_run.tags == []
        (flow_run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=[task_run.flow_run_id])), limit=1, sort=FlowRunSort.ID_DESC)
        # Nor a heartbeat thread per drain run (joined at its end: up to a second a cycle).
        heartbeats = client.read_events(EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run.id}"])), limit=10)
        assert heartbeats.events == []
    region = rows(demo, "SELECT region_code FROM outbox WHERE job = 'issue_certificate'")[0][0]
    assert {f"case:{n}", f"region:{region}", "item:CBWLSXK", "job:issue_certificate"} <= set(flow_run.tags)


def test_cross_region_handoff_registers_receipt_and_the_way_back(demo: Demo, drainer) -> None:  # type: ignore[no-untyped-def]
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
    n = case["number"]
    demo.fire("王芳", n, "forward")
    drainer.drain_until_idle()
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("王芳")).json()["items"]
    receipt = [e for e in events if e["kind"] == "handoff"]
    assert len(receipt) == 1 and receipt[0]["counter_id"] == "qd-xihai"
    assert receipt[0]["data"]["to_counter"] == "qd-xihai" and "已接件" in receipt[0]["comment"]
    demo.fire("李强", n, "approve")
    drainer.drain_until_idle()
    # issue_certificate fired `issue`: the result went back to Jinan (a hand-off the other way).
    assert state_of(demo, n) == "result_ready"
    regions = rows(demo, "SELECT region_code FROM outbox WHERE job = 'handoff' ORDER BY created_at")
    assert [r[0] for r in regions] == ["370211", "370100"]
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("王芳")).json()["items"]
    assert [e["counter_id"] for e in events if e["kind"] == "handoff"] == ["qd-xihai", "jn-kuayu"]
    assert demo.count("outbox", status="done") == demo.count("outbox")


def test_auto_review_approves_or_sends_to_a_person_and_names_the_rule(demo: Demo, drainer) -> None:  # type: ignore[no-untyped-def]
    good = {"name": "浦东某某宾馆有限公司", "kind": "company", "id_number": "91310115MA1H8K2D11",
            "phone": "13900139000", "address": "上海市浦东新区世纪大道 100 号"}
    auto = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=good)
    human = demo.create("陈静", "GGCSWSXK", ALL_GGCS,
                        applicant={**good, "kind": "person", "id_number": "11010519491231002X"})
    for c in (auto, human):
        demo.fire("陈静", c["number"], "accept")
        demo.fire("陈静", c["number"], "request_auto_review")  # the reviewer chooses it
    drainer.drain_until_idle()
    assert state_of(demo, auto["number"]) == "issued"  # approved, certificate, issued: no person
    assert state_of(demo, human["number"]) == "review"

    def decided(number: str) -> dict:
        events = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("陈静")).json()["items"]
        return next(e for e in events if (e["data"] or {}).get("auto_review"))

    a, h = decided(auto["number"]), decided(human["number"])
    assert a["trigger"] == "auto_approve" and a["data"]["auto_review"]["rule"] == "address_given"
    assert h["trigger"] == "manual_review" and h["data"]["auto_review"]["rule"] == "applicant_is_company"
    assert "申请人为经营单位" in h["comment"]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 200), "white").save(buf, "PNG")
    return buf.getvalue()


def test_handoff_checks_every_page_and_copies_pages_to_the_destination_bucket(
        demo: Demo, drainer) -> None:  # type: ignore[no-untyped-def]
    from core.settings import get_settings
    from engine import scans
    from storage.object_factory import get_store

    get_settings().region_buckets = True
    try:
        case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
        n = case["number"]
        with session_scope(demo.engine) as s:
            page = scans.add_page(s, n, "application", _png(), "申请书.png", demo.actor("王芳"))
        demo.fire("王芳", n, "forward")
        drainer.drain_until_idle()
        events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("王芳")).json()["items"]
        receipt = next(e for e in events if e["kind"] == "handoff")
        assert receipt["data"]["pages_checked"] == 1 and receipt["data"]["objects_copied"] == 1
        assert receipt["data"]["sha256"] == [page["sha256"]]
        assert get_store().stat("tongban-scans-370211", f"sha256/{page['sha256']}") is not None
    finally:
        get_settings().region_buckets = False


def test_a_page_whose_bytes_changed_stops_the_handoff(demo: Demo, drainer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from core.settings import get_settings
    from engine import scans

    monkeypatch.setattr(get_settings(), "job_retry_base_seconds", 0.0)  # the five attempts back to back

    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
    n = case["number"]
    with session_scope(demo.engine) as s:
        page = scans.add_page(s, n, "application", _png(), "申请书.png", demo.actor("王芳"))
    stored = get_settings().object_dir / page["bucket"] / page["key"]
    stored.chmod(0o644)
    stored.write_bytes(b"tampered")
    demo.fire("王芳", n, "forward")
    drainer.drain_until_idle()
    status, attempts, error = rows(demo, "SELECT status, attempts, last_error FROM outbox WHERE job = 'handoff'")[0]
    assert status == "failed" and attempts == 5 and "材料清单校验失败" in error
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("王芳")).json()["items"]
    assert not [e for e in events if e["kind"] == "handoff"]


def test_the_app_drains_the_outbox_itself_when_embedded_flows_are_on(demo: Demo, drainer) -> None:  # type: ignore[no-untyped-def]
    """What `tongban serve` does: TONGBAN_EMBEDDED_FLOWS starts the drainer with the app."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import get_settings

    settings = get_settings()
    settings.embedded_flows, settings.flows_poll_seconds = True, 0.2
    try:
        app = create_app(demo.engine)
    finally:
        settings.embedded_flows, settings.flows_poll_seconds = False, 1.0
    case = demo.create("陈静", "CBWLSXK", {"application": "received", "premises_proof": "received",
                                          "operator_id": "received"})
    n = case["number"]
    for trigger in ("accept", "start_review", "approve"):
        demo.fire("陈静", n, trigger)
    with TestClient(app):
        wait_for(lambda: state_of(demo, n) == "issued")
