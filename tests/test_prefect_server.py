"""Prefect's scheduler inserts flow runs with an ORM bulk INSERT whose rows carry a ``state`` key.

Under SQLAlchemy 2.1 that INSERT fails unless ``FlowRun.state`` has a bulk hook
(flows.prefect_server); the first half of the test is the canary that says when the hook is no
longer needed (Prefect or SQLAlchemy changed), the second that with it the runs go in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database import orm_models
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from flows import prefect_server


def _runs() -> list[dict[str, object]]:
    at = datetime.now(UTC)
    return [{"id": uuid.uuid4(), "flow_id": uuid.uuid4(), "name": f"run-{i}", "tags": [],
             "parameters": {}, "idempotency_key": f"scheduled {i}", "auto_scheduled": True,
             "state": {"type": "SCHEDULED", "name": "Scheduled", "timestamp": at},
             "state_type": "SCHEDULED", "state_name": "Scheduled", "expected_start_time": at,
             "next_scheduled_start_time": at} for i in range(3)]


def test_the_scheduler_insert_needs_the_hook_and_works_with_it() -> None:
    engine = sa.create_engine("sqlite://")
    orm_models.FlowRun.__table__.create(engine)  # type: ignore[attr-defined]
    rows = _runs()
    with Session(engine) as s:
        if not prefect_server._patched:
            with pytest.raises(InvalidRequestError, match="bulk_dml"):
                s.execute(sa.insert(orm_models.FlowRun), rows)
            s.rollback()
        patched = prefect_server.patch()
        assert "FlowRun.state" in patched and "TaskRun.state" in patched
        s.execute(sa.insert(orm_models.FlowRun), rows)
        s.commit()
        names = s.execute(sa.select(orm_models.FlowRun.name).order_by(orm_models.FlowRun.name))
        assert list(names.scalars()) == ["run-0", "run-1", "run-2"]
    assert all("state" in r for r in rows)  # Prefect reads the states from its rows afterwards
    assert prefect_server.patch() == patched  # once only


def test_server_start_takes_the_tls_options_and_checks_the_files_first(tmp_path: Path) -> None:
    args = ["server", "start", "--port", "4200", "--ssl-certfile", "/etc/tls/p.crt", "--ssl-keyfile=/etc/tls/p.key"]
    assert prefect_server.take_tls_options(args) == (
        ["server", "start", "--port", "4200"], {"ssl_certfile": "/etc/tls/p.crt", "ssl_keyfile": "/etc/tls/p.key"})
    assert prefect_server.take_tls_options(["server", "start"]) == (["server", "start"], {})
    with pytest.raises(SystemExit, match="同时给出"):
        prefect_server.take_tls_options(["server", "start", "--ssl-certfile", "/etc/tls/p.crt"])
    with pytest.raises(SystemExit, match="缺少文件路径"):
        prefect_server.take_tls_options(["server", "start", "--ssl-keyfile"])
    with pytest.raises(SystemExit, match="--background"):
        prefect_server.main(["server", "start", "-b", *args[4:]])
    # A certificate that is not there stops the start with the reason, before uvicorn is touched.
    with pytest.raises(SystemExit, match="TLS 证书或私钥不可用.*No such file"):
        prefect_server.serve_tls(str(tmp_path / "none.crt"), str(tmp_path / "none.key"))
