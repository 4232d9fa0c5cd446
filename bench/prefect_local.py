"""What the distributed benchmarks share: a fresh PostgreSQL database and a PostgreSQL-backed
``prefect server start`` (the distributed setup) on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from storage.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
_KEEP = ("postgres", "test", "tb_lead")  # databases a benchmark must never drop


def fresh(url: str) -> None:
    """Drop and create the database ``url`` names (refused for the shared ones)."""
    base, name = url.rsplit("/", 1)
    if name in _KEEP or name.startswith("template"):
        raise SystemExit(f"refusing to drop {name}")
    admin = make_engine(f"{base.replace('+asyncpg', '+psycopg')}/postgres").execution_options(
        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()


def start_prefect_server(db_url: str, log: Path | None = None,
                         fresh_db: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on ``db_url`` (an asyncpg URL; emptied first unless ``fresh_db`` is off),
    wait until healthy, point this process's ``PREFECT_API_URL`` at it; returns it and its API URL."""
    if fresh_db:
        fresh(db_url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PREFECT_API_DATABASE_CONNECTION_URL": db_url, "PREFECT_UI_ENABLED": "false"}
    err = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen([sys.executable, "-m", "flows.prefect_server", "server", "start", "--host",
                             "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    for _ in range(480):
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                os.environ["PREFECT_API_URL"] = api
                return proc, api
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"prefect server did not start{f' (see {log})' if log else ''}")
