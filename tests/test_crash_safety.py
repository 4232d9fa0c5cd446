"""SIGKILL the server under load, several times: nothing answered 2xx is lost, nothing is half-done.

Clients retry with the same Idempotency-Key after a crash, as a real counter client would, so a
transition whose answer was lost in the crash is neither lost nor applied twice. The embedded
Prefect drainer runs the jobs the transitions start (certificate, waybill, notifications) while
the server is being killed: each job runs to completion exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import answers_for, free_port, wait_healthy

from core.settings import ROOT
from engine.history import Break, verify
from storage.db import make_engine, session_scope

# Clerks drive the path up to approval; the flows issue the certificate, fire `issue` and book
# the waybill by themselves.
ITEM = "CBWLSXK"
MATERIALS = {"application": "received", "premises_proof": "received", "operator_id": "received"}
PATH = ["accept", "start_review", "approve"]
KILLS = 3
CLIENTS = 4
CASES_PER_CLIENT = 6


class Server:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp / 'crash.db'}",
                    "TONGBAN_DATA_DIR": str(tmp), "TONGBAN_OBJECT_DIR": str(tmp / "objects"),
                    # A job whose drainer was killed is claimed again after this lease.
                    "TONGBAN_JOB_LEASE_SECONDS": "3", "TONGBAN_FLOWS_POLL_SECONDS": "0.5"}
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(self.port)],
                                     cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not wait_healthy(f"http://127.0.0.1:{self.port}/healthz", 60):
            raise RuntimeError("server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def _client_loop(base: str, token: str, stop: threading.Event, answered: list[dict[str, Any]],
                 errors: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}

    def call(method: str, url: str, key: str, **kw: Any) -> httpx.Response:
        # Retry through crashes with the same key until an answer arrives (bounded).
        all_headers = {**headers, "Idempotency-Key": key, **kw.pop("extra", {})}
        for _ in range(400):
            try:
                with httpx.Client(timeout=5) as c:
                    return c.request(method, base + url, headers=all_headers, **kw)
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("no answer after retries")

    for _ in range(CASES_PER_CLIENT):
        if stop.is_set():
            return
        r = call("POST", "/api/v1/cases", str(uuid.uuid4()),
                 json={"item_code": ITEM, "applicant": {"name": "压测申请人", "address": "上海市浦东新区世纪大道100号",
                                                        "phone": "13800000000"}, "materials": MATERIALS,
                       "situation": answers_for(ITEM, MATERIALS)})
        if r.status_code != 201:
            errors.append(r.text)
            return
        case = r.json()
        answered.append({"number": case["number"], "seq": 1, "trigger": None})
        version = case["version"]
        for trigger in PATH:
            r = call("POST", f"/api/v1/cases/{case['number']}/triggers/{trigger}", str(uuid.uuid4()),
                     extra={"If-Match": f'"{version}"'})
            if r.status_code != 200:
                errors.append(f"{trigger}: {r.status_code} {r.text}")
                return
            version = r.json()["version"]
            answered.append({"number": case["number"], "seq": version, "trigger": trigger})


@pytest.mark.timeout(600)
def test_sigkill_under_load_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.start()
    tokens = {t["name"]: t["token"] for t in json.loads((tmp_path / "demo-tokens.json").read_text())}
    answered: list[dict[str, Any]] = []
    errors: list[str] = []
    stop = threading.Event()
    base = f"http://127.0.0.1:{server.port}"
    # 陈静 holds clerk, reviewer and approver at pd-zhengwu: one clerk can walk the whole path.
    threads = [threading.Thread(target=_client_loop, args=(base, tokens["陈静"], stop, answered, errors))
               for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    kills = 0
    total = CLIENTS * CASES_PER_CLIENT * (1 + len(PATH))
    try:
        # Kill at a quarter, half and three quarters of the answers, however fast the server is.
        while kills < KILLS and any(t.is_alive() for t in threads):
            if len(answered) < (kills + 1) * total // (KILLS + 1):
                time.sleep(0.005)
                continue
            server.kill()
            kills += 1
            time.sleep(0.3)
            server.start()
        for t in threads:
            t.join(timeout=300)
        assert kills == KILLS and not errors, errors
        assert len(answered) == total
        engine = make_engine(server.env["TONGBAN_DATABASE_URL"])
        _wait_for_jobs(engine)
    finally:
        stop.set()
        server.kill()

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.number, h.seq, h.trigger, h.kind FROM history h JOIN cases c ON c.id = h.case_id")).all()
        cases = conn.execute(sa.text("SELECT number, version, state FROM cases")).all()
        jobs = conn.execute(sa.text("SELECT status, count(*) FROM outbox GROUP BY status")).all()
        effects = conn.execute(sa.text("SELECT count(*) FROM job_effects")).scalar_one()
        certs = conn.execute(sa.text("SELECT case_id, count(*) FROM certificates GROUP BY case_id")).all()
        waybills = conn.execute(sa.text("SELECT case_id, count(*) FROM waybills GROUP BY case_id")).all()
    stored = {(n, s): t for n, s, t, _ in rows}
    for a in answered:  # every answered transition is there, at the position it was answered with
        assert stored.get((a["number"], a["seq"]), "missing") == a["trigger"], a
    clerk_events = [r for r in rows if r[3] == "intake" or (r[3] == "transition" and r[2] in PATH)]
    assert len(clerk_events) == len(answered)  # and nothing else: no duplicate from a retried request
    assert {s for _, _, s in cases} == {"issued"}  # the flows carried every case on by themselves
    assert dict(jobs) == {"done": dict(jobs)["done"]} and effects == dict(jobs)["done"]
    assert len(certs) == len(waybills) == len(cases)
    assert {n for _, n in certs} == {n for _, n in waybills} == {1}  # exactly one each, after crashes
    with session_scope(engine) as s:
        results = list(verify(s))
    assert not [r for r in results if isinstance(r, Break)] and results[-1] == len(cases)


def _wait_for_jobs(engine: sa.Engine, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            open_jobs = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE status <> 'done'")).scalar_one()
        if open_jobs == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"{open_jobs} outbox jobs still open")
