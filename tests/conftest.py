"""Shared fixtures: a migrated, seeded database on SQLite and on PostgreSQL, and an API client."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import ROOT
from engine.actors import authenticate
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

# Helpers working in parallel point this at a database of their own.
# Prefect's temporary server logs its shutdown after pytest has closed the streams at exit;
# without this, "--- Logging error ---" tracebacks follow the summary line.
logging.raiseExceptions = False

PG_URL = os.environ.get("TONGBAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CATALOG = ROOT / "catalog" / "items"
ALLIANCE = ROOT / "catalog" / "alliance.yaml"


def _reset_pg() -> sa.Engine:
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'tongban.db'}") if request.param == "sqlite" else _reset_pg()
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'tongban.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


class Demo:
    """The seeded demo: tokens by clerk name, and helpers to call the API as them."""

    def __init__(self, engine: sa.Engine, client: TestClient, tokens: list[dict[str, str]]) -> None:
        self.engine, self.client = engine, client
        self.tokens = {t["name"]: t["token"] for t in tokens}

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def actor(self, who: str):  # type: ignore[no-untyped-def]
        with session_scope(self.engine) as s:
            return authenticate(s, self.tokens[who])

    def create(self, who: str, item: str, materials: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
        payload = {"item_code": item, "applicant": {"name": "测试申请人", "kind": "company",
                                                     "phone": "0531-88880000"},
                   "materials": materials or {}, **body}
        r = self.client.post("/api/v1/cases", json=payload, headers=self.h(who))
        assert r.status_code == 201, r.text
        return r.json()

    def fire(self, who: str, number: str, trigger: str, version: int | None = None,
             expect: int = 200, **body: Any) -> dict[str, Any]:
        if version is None:
            version = self.client.get(f"/api/v1/cases/{number}", headers=self.h(who)).json()["version"]
        r = self.client.post(f"/api/v1/cases/{number}/triggers/{trigger}", json=body or None,
                             headers=self.h(who, **{"If-Match": f'"{version}"'}))
        assert r.status_code == expect, r.text
        return r.json()

    def count(self, table: str, **where: Any) -> int:
        q = f"SELECT count(*) FROM {table}"
        if where:
            q += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(q), where).scalar_one())


@pytest.fixture
def demo(db: sa.Engine, tmp_path: Path) -> Iterator[Demo]:
    yield from _demo(db, tmp_path)


@pytest.fixture
def sqlite_demo(sqlite_db: sa.Engine, tmp_path: Path) -> Iterator[Demo]:
    yield from _demo(sqlite_db, tmp_path)


def _demo(engine: sa.Engine, tmp_path: Path) -> Iterator[Demo]:
    with session_scope(engine) as s:
        tokens = seed(s, CATALOG, ALLIANCE, tmp_path / "tokens.json", 30)
    app = create_app(engine)
    with TestClient(app) as client:
        yield Demo(engine, client, tokens)


ALL_GGCS = {m: "received" for m in ("application_form", "legal_rep_id", "floor_plans",
                                      "hygiene_report", "hygiene_rules")}
ALL_FGS = {m: "received" for m in ("application", "power_of_attorney", "appointment_docs", "license")}


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, default=str)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """A real uvicorn server for ``app`` in a thread on a free 127.0.0.1 port; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def serve_app() -> Iterator[Any]:
    """Call it with an app; it returns the base URL. Servers stop when the test ends."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serving(app))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, seconds: float, interval: float = 0.1) -> bool:
    """Poll ``url`` until it answers 200; False if ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-protocol server (moto in server mode) for the session: ``127.0.0.1:<port>``.

    Moto keeps its data in process memory, so several servers in one test process share it.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()
