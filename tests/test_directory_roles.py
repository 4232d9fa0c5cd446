"""Least privilege: a region's worker connects with a role that claims only its own jobs.

PostgreSQL only (roles and row-level security). The roles get a prefix of this test database's
own: roles belong to the whole cluster, which other databases share.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from engine import directory_roles
from flows import jobs, outbox
from storage.db import make_engine
from storage.tables import T_OUT

pytestmark = pytest.mark.postgres
JINAN, QINGDAO = "370100", "370211"


@pytest.fixture
def logins(demo: Demo) -> Iterator[dict[str, sa.Engine]]:
    """A login for Jinan's worker and one for Qingdao's, members of their regions' roles."""
    url = demo.engine.url
    prefix = f"tbt_{url.database}"[:30]
    made = directory_roles.apply(demo.engine, prefix)
    assert f"{prefix}_{QINGDAO}" in made
    admin = demo.engine.execution_options(isolation_level="AUTOCOMMIT")
    names = {region: f"{prefix}_login_{region}" for region in (JINAN, QINGDAO)}
    with admin.connect() as conn:
        for region, name in names.items():
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD 'pw' IN ROLE {prefix}_{region}")
    engines = {region: make_engine(url.set(username=name, password="pw").render_as_string(hide_password=False))
               for region, name in names.items()}
    try:
        yield engines
    finally:
        for e in engines.values():
            e.dispose()
        with admin.connect() as conn:
            for role in (*names.values(), *(f"{prefix}_{r}" for r in _regions(demo)), f"{prefix}_dispatcher", prefix):
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
