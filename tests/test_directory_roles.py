"""Least privilege: a region's worker connects with a role that claims only its own jobs.

PostgreSQL only (roles and row-level security). The roles get a prefix of this test database's
own: roles belong to the whole cluster, which other databases share.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, answers_for
from local_servers import SmtpServer
from test_webhooks import SECRET, Receiver, subscribe

from core import clock
from core.settings import get_settings
from engine import directory_roles, webhooks
from flows import drain, jobs, notify, outbox
from storage.db import make_engine, session_scope
from storage.object_factory import get_store
from storage.tables import T_OUT
from video import rooms
from video.rooms import RECORDING_JOB

pytestmark = pytest.mark.postgres
JINAN, QINGDAO, PUDONG, DISPATCHER, VIDEO = "370100", "370211", "310115", "dispatcher", "video"


@pytest.fixture
def logins(demo: Demo) -> Iterator[dict[str, sa.Engine]]:
    """Logins for Jinan's, Qingdao's and Pudong's workers, members of their regions' roles, one
    for the video queue's worker (``VIDEO``, on Janus's machine) and one for the dispatcher
    (``DISPATCHER``), members of ``<prefix>_video`` and ``<prefix>_dispatcher``."""
    url = demo.engine.url
    prefix = f"tbt_{url.database}"[:30]
    made = directory_roles.apply(demo.engine, prefix)
    assert f"{prefix}_{QINGDAO}" in made
    admin = demo.engine.execution_options(isolation_level="AUTOCOMMIT")
    names = {who: f"{prefix}_login_{who}" for who in (JINAN, QINGDAO, PUDONG, DISPATCHER, VIDEO)}
    with admin.connect() as conn:
        for who, name in names.items():
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE {prefix}_{who}")
    engines = {who: make_engine(url.set(username=name, password="pw").render_as_string(hide_password=False))
               for who, name in names.items()}
    try:
        yield engines
    finally:
        for e in engines.values():
            e.dispose()
        with admin.connect() as conn:
            for role in (*names.values(), *(f"{prefix}_{r}" for r in _regions(demo)), f"{prefix}_dispatcher",
                         f"{prefix}_video", prefix):
                conn.exec_driver_sql(f"DROP OWNED BY {role}")  # its grants and policies here
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


def _regions(demo: Demo) -> list[str]:
    with demo.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT code FROM regions")).scalars())


def _job(demo: Demo, number: str, job: str) -> dict[str, Any]:
    with demo.engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT o.id, o.status, o.region_code FROM outbox o JOIN cases k ON k.id = o.case_id "
            "WHERE k.number = :n AND o.job = :j"), {"n": number, "j": job}).mappings().one())


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_worker_with_another_regions_role_cannot_claim_its_job(demo: Demo, logins: dict[str, sa.Engine]) -> None:
    n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=QINGDAO)["number"]
    demo.fire("王芳", n, "accept")  # the hand-off job waits in Qingdao's outbox
    handoff = _job(demo, n, "handoff")
    assert handoff["region_code"] == QINGDAO and handoff["status"] == "pending"
    jinan = logins[JINAN]
    # Jinan's worker: Qingdao's jobs are not there for it, whatever it asks.
    assert outbox.claim(jinan, QINGDAO, 10) == []
    assert outbox.claim(jinan, None, 10, job_ids=[handoff["id"]]) == []
    with jinan.begin() as conn:
        assert conn.execute(sa.update(T_OUT).where(T_OUT.c.id == handoff["id"]).values(status="done")).rowcount == 0
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"), jinan.begin() as conn:
        conn.execute(sa.text("INSERT INTO job_leases (job_id, owner, lease_until) VALUES (:j, 'jn', now())"),
                     {"j": handoff["id"]})
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), jinan.begin() as conn:
        conn.execute(sa.text("UPDATE clerks SET roles = 'supervisor'"))  # nor make itself a supervisor
    assert _job(demo, n, "handoff")["status"] == "pending"

    # Qingdao's worker claims its region's jobs, and the hand-off (接件: history, the case, the
    # effect, the lease, the outbox mark) commits under its own role.
    qingdao = logins[QINGDAO]
    claimed = outbox.claim(qingdao, QINGDAO, 100)
    assert handoff["id"] in {j["id"] for j in claimed} and {j["region_code"] for j in claimed} == {QINGDAO}
    jobs.run(qingdao, next(j for j in claimed if j["id"] == handoff["id"]))
    assert _job(demo, n, "handoff")["status"] == "done"
    outbox.release(qingdao, [j["id"] for j in claimed if j["id"] != handoff["id"]])
    with demo.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM job_leases")).scalar_one() == 0


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_every_table_is_either_read_only_or_named_with_what_workers_may_write(demo: Demo) -> None:
    """The worker's grants are an allow-list: a table added without saying what workers do with
    it would be read only for them (and this fails, so that someone decides)."""
    tables = set(sa.inspect(demo.engine).get_table_names())
    classified = set(directory_roles.READ_ONLY) | set(directory_roles.WRITES)
    assert tables - classified == set(), "say in engine/directory_roles.py what workers may do with these"
    assert set(directory_roles.WRITES) <= tables
    assert not set(directory_roles.READ_ONLY) & set(directory_roles.WRITES)


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_worker_neither_rewrites_the_record_nor_queues_work_for_an_unrelated_region(
        demo: Demo, logins: dict[str, sa.Engine]) -> None:
    n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=QINGDAO)["number"]
    demo.fire("王芳", n, "accept")
    qingdao = logins[QINGDAO]
    for sql in ("DELETE FROM history", "UPDATE history SET comment = 'x'", "DELETE FROM certificates",
                "DELETE FROM job_effects", "DELETE FROM cases", "TRUNCATE outbox"):
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), qingdao.begin() as conn:
            conn.execute(sa.text(sql))
    with demo.engine.connect() as conn:
        case_id = conn.execute(sa.text("SELECT id FROM cases WHERE number = :n"), {"n": n}).scalar_one()

    def queue(region: str) -> None:
        with qingdao.begin() as conn:
            conn.execute(sa.insert(T_OUT).values(
                id=str(uuid.uuid4()), case_id=case_id, job="notify_applicant", region_code=region,
                counter_id=None, status="pending", attempts=0, created_at=datetime.now(UTC)))

    queue(JINAN)  # the intake counter's region: the way back
    queue(QINGDAO)
    queue("video")  # the recording of a room the case's job closed runs on the video queue
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        queue("310115")  # Pudong has nothing to do with this case


def _drain_as(engine: sa.Engine, region: str) -> list[str]:
    """Run the region's jobs with its worker's login, as its drainer does; the jobs it ran."""
    ran = []
    while claimed := outbox.claim(engine, region, 100):
        for job in claimed:
            try:
                jobs.run(engine, job)
            except Exception as exc:  # noqa: BLE001 - a job refused by the grants is the failure
                raise AssertionError(f"{job['job']}: {exc}") from exc
            ran.append(job["job"])
    return ran


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_regions_worker_does_a_whole_case_s_work_with_only_its_grants(
        demo: Demo, logins: dict[str, sa.Engine]) -> None:
    """Review, decision and certificate (PDF signed, stored, 证照 recorded) under the allow-list."""
    qingdao = logins[QINGDAO]
    n = demo.create("李强", "GGCSWSXK", ALL_GGCS)["number"]
    demo.fire("李强", n, "accept")
    demo.fire("李强", n, "request_auto_review")
    ran = _drain_as(qingdao, QINGDAO)  # the rules approve it: the decision's follow-ups run as well
    assert {"auto_review", "issue_certificate"} <= set(ran), ran
    with demo.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM certificates c JOIN cases k ON k.id = c.case_id "
                                    "WHERE k.number = :n"), {"n": n}).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM outbox WHERE status <> 'done'")).scalar_one() == 0


# --- the scheduled work of a distributed setup, each under the role the deploy runs it with -----
# drain-outbox/counter-<region> and the listening drainer: the region's worker (above).
# deadline-sweep: on the pool of whichever worker registered it (flows.deploy.ensure_sweep), so
# under *that* worker's login, a region's or the video queue's, for every region's cases.
# drain-outbox/counter-video and its drainer, on Janus's machine: the video queue's login.
# tongban dispatch: queues webhook deliveries, sends due notifications (and their retries), finds
# the regions with work, under the dispatcher's login.

MONDAY_EARLY = datetime(2026, 12, 7, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def store_and_mail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """Objects (the notices, the anchor) under tmp_path; supervisors' mail to a local SMTP server."""
    s = get_settings()
    monkeypatch.setattr(s, "object_dir", tmp_path / "objects")
    monkeypatch.setattr(s, "anchor_key", "the sweep's test key")
    monkeypatch.setattr(s, "notify_supervisor_emails", {"*": ["zhiban@example.cn"]})
    smtp = SmtpServer()
    monkeypatch.setattr(s, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(s, "smtp_port", smtp.port)
    get_store.cache_clear()
    smtp.start()
    try:
        yield smtp
    finally:
        smtp.stop()
        get_store.cache_clear()


@pytest.mark.parametrize("pool", [JINAN, VIDEO])
@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_hourly_deadline_sweep_runs_under_the_login_of_the_worker_whose_pool_has_it(
        demo: Demo, logins: dict[str, sa.Engine], store_and_mail: SmtpServer, pool: str) -> None:
    """预警/逾期 for another region's cases, supervisors' notifications, expired Idempotency-Key
    answers purged, no-shows marked, the history anchored: all with the grants of Jinan's worker,
    or of the video queue's (its ``tongban worker`` may have registered the sweep too)."""
    with clock.frozen(MONDAY_EARLY):
        r = demo.client.post("/api/v1/cases", headers=demo.h("王芳", **{"Idempotency-Key": "sweep-1"}), json={
            "item_code": "GGCSWSXK", "applicant": {"name": "王芳", "phone": "13800001234"},
            "materials": ALL_GGCS, "situation": answers_for("GGCSWSXK", ALL_GGCS), "competent_region": QINGDAO})
        assert r.status_code == 201, r.text
        demo.fire("王芳", r.json()["number"], "accept")  # Qingdao's case, its promised date running
        booked = demo.client.post("/api/v1/appointments", json={
            "counter": "pd-zhengwu", "item": "GGCSWSXK", "date": "2026-12-07", "start": "09:00",
            "name": "张三", "phone": "13800005678"})
        assert booked.status_code == 201, booked.text
    drain.use_engine(logins[pool])
    try:
        with clock.frozen(MONDAY_EARLY + timedelta(days=120)):  # long overdue, the booking missed
            counts = drain.deadline_sweep.fn()
    finally:
        drain.use_engine(None)
    assert counts["overdue"] >= 1 and counts["changed"] >= 1, counts
    assert counts["idempotency_purged"] == 1 and counts["appointment_no_shows"] == 1, counts
    assert counts["anchor_written"] == 1 and counts["anchor_problems"] == 0, counts
    assert demo.count("cases", deadline_status="逾期") >= 1
    assert demo.count("notifications", kind="deadline_逾期") >= 1
    assert demo.count("appointments", status="no_show") == 1 and demo.count("idempotency") == 0


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_dispatchers_round_and_what_it_queues_run_under_their_roles(
        demo: Demo, logins: dict[str, sa.Engine], store_and_mail: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's last attempt fails under Qingdao's login (supervisors told); the dispatcher's login
    queues a webhook delivery for Pudong, sends the supervisors' mail and sees every region's work;
    Pudong's login delivers the events."""
    monkeypatch.setattr(get_settings(), "job_max_attempts", 1)
    receiver = Receiver().up()
    try:
        subscribe(demo, "陈静", receiver.url, secret=SECRET)
        pd_case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=QINGDAO)["number"]
        demo.fire("王芳", n, "accept")
        qingdao = logins[QINGDAO]
        handoff = _job(demo, n, "handoff")
        (claimed,) = outbox.claim(qingdao, QINGDAO, 1, job_ids=[handoff["id"]])
        assert outbox.mark_failed(qingdao, claimed["id"], "RuntimeError: 对端不可用") == "failed"
        assert demo.count("notifications", kind="job_failed") == 1

        dispatcher = logins[DISPATCHER]
        assert webhooks.pump(dispatcher)["queued"] == 1  # what Dispatcher.dispatch_once does first
        assert _job(demo, pd_case["number"], webhooks.JOB)["region_code"] == PUDONG
        assert notify.pump(dispatcher)["sent"] >= 1  # then the notifications that are due
        assert {JINAN, QINGDAO, PUDONG} >= set(outbox.regions_with_work(dispatcher)) >= {PUDONG}
        assert [r[1] for r in store_and_mail.received] == [["zhiban@example.cn"]] * len(store_and_mail.received)
        assert any("job_failed" in n["kind"] and n["status"] == "sent" for n in _notes(demo))

        ran = _drain_as(logins[PUDONG], PUDONG)  # the delivery job on Pudong's worker
        assert webhooks.JOB in ran, ran
    finally:
        receiver.down()
    assert receiver.bad == [] and len(receiver.answered()) >= 1


def _notes(demo: Demo) -> list[dict[str, Any]]:
    with demo.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT kind, status FROM notifications")).mappings()]


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_video_queues_worker_claims_and_closes_its_queues_jobs_and_no_regions(
        demo: Demo, logins: dict[str, sa.Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    """A room closed with the janus backend queues its recordings on the video queue: Qingdao's
    worker (the case's region) does not get that job, the video queue's login gets it and nothing
    of a region's, and completes it (a room nobody joined: nothing recorded, nothing to ask Janus)."""
    n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=QINGDAO)["number"]
    demo.fire("王芳", n, "accept")
    demo.fire("李强", n, "start_inspection")
    r = demo.client.post(f"/api/v1/cases/{n}/video-rooms", headers=demo.h("李强"), json={})
    assert r.status_code == 201, r.text
    monkeypatch.setattr(get_settings(), "video_backend", "janus")
    with session_scope(demo.engine) as s:
        assert rooms.close(s, str(r.json()["id"]), "ended")
    recording = _job(demo, n, RECORDING_JOB)
    assert recording["region_code"] == VIDEO and recording["status"] == "pending"
    qingdao, video = logins[QINGDAO], logins[VIDEO]
    assert outbox.claim(qingdao, None, 10, job_ids=[recording["id"]]) == []
    assert outbox.claim(video, QINGDAO, 10) == []  # nor does the video queue's worker get a region's
    assert outbox.claim(video, None, 100, job_ids=[_job(demo, n, "notify_applicant")["id"]]) == []
    assert _drain_as(video, VIDEO) == [RECORDING_JOB]
    assert _job(demo, n, RECORDING_JOB)["status"] == "done"
