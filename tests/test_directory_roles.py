"""Least privilege: a region's worker connects with a role that claims only its own jobs.

PostgreSQL only (roles and row-level security). The roles get a prefix of this test database's
own: roles belong to the whole cluster, which other databases share.
"""

from __future__ import annotations

from collections.abc import Iterator
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
