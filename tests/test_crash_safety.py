"""SIGKILL the server under load, several times: nothing answered 2xx is lost, nothing is half-done.

Clients retry with the same Idempotency-Key after a crash, as a real counter client would, so a
transition whose answer was lost in the crash is neither lost nor applied twice.
"""

from __future__ import annotations

import json
import os
import signal
import socket
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
from conftest import ALL_GGCS

from core.settings import ROOT
from engine.history import Break, verify
from storage.db import make_engine, session_scope

PATH = ["accept", "start_review", "approve", "issue", "deliver"]
KILLS = 3
CLIENTS = 4
CASES_PER_CLIENT = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp / 'crash.db'}",
                    "TONGBAN_DATA_DIR": str(tmp), "TONGBAN_OBJECT_DIR": str(tmp / "objects")}
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(self.port)],
                                     cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
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
                 json={"item_code": "GGCSWSXK", "applicant": {"name": "压测申请人"}, "materials": ALL_GGCS})
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
    try:
        while kills < KILLS and any(t.is_alive() for t in threads):
            time.sleep(1.0)
            server.kill()
            kills += 1
            time.sleep(0.3)
            server.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        stop.set()
        server.kill()
    assert kills == KILLS and not errors, errors
    assert len(answered) == CLIENTS * CASES_PER_CLIENT * (1 + len(PATH))

    engine = make_engine(server.env["TONGBAN_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.number, h.seq, h.trigger FROM history h JOIN cases c ON c.id = h.case_id")).all()
        cases = conn.execute(sa.text("SELECT number, version, state FROM cases")).all()
    stored = {(n, s): t for n, s, t in rows}
    for a in answered:  # every answered transition is there, at the position it was answered with
        assert stored.get((a["number"], a["seq"]), "missing") == a["trigger"], a
    assert len(rows) == len(answered)  # and nothing else: no duplicate from a retried request
    assert {s for _, _, s in cases} == {"completed"}
    with session_scope(engine) as s:
        results = list(verify(s))
    assert not [r for r in results if isinstance(r, Break)] and results[-1] == len(cases)
