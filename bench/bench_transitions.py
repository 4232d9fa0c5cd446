"""Transitions benchmark: how fast a case moves through 公共场所卫生许可 (GGCSWSXK), and at what cost.

Measures, per database (SQLite in WAL mode, PostgreSQL):

* the engine in-process: ``engine.advance.advance`` on many cases, one transaction per transition;
* the clerk API over HTTP: uvicorn (1 and 2 workers) started as a subprocess, loaded by an
  minimal asyncio HTTP/1.1 client in this process (keep-alive, one connection per clerk): saturated throughput,
  then latency at about half that load, open loop (paced, measured from the scheduled send time);
* baselines on the same database in the same run: a Prefect flow run per transition (the same
  ``advance`` inside a trivial ``@flow``, local ephemeral server; with default settings and with
  the flow-run heartbeat thread off), and SpiffWorkflow running the same five steps as BPMN
  user tasks (``gongong_weisheng.bpmn``), its serialized state loaded and saved in the database
  at each step, one transaction per step.

Writes ``bench/results/transitions.json`` in the shared benchmark shape and prints a table.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import itertools
import json
import math
import multiprocessing
import os
import platform
import pstats
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import httpx
import raw_limits
import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.util.task import TaskState

from core.settings import ROOT
from engine.actors import Actor, add_clerk, authenticate
from engine.advance import advance
from engine.demo import seed
from engine.intake import create_case
from storage import migrate
from storage.db import make_engine, session_scope
from storage.group_commit import GroupCommitter

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "transitions.json"
BPMN_FILE = BENCH_DIR / "gongong_weisheng.bpmn"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tongban_bench"
PROTECTED_DATABASES = {"test", "postgres", "template0", "template1"}

ITEM = "GGCSWSXK"  # 公共场所卫生许可
COUNTER = "jn-kuayu"
PATH = ("accept", "start_review", "approve", "issue", "deliver")
MATERIALS = {m: "received" for m in
             ("application_form", "legal_rep_id", "floor_plans", "hygiene_report", "hygiene_rules")}
SITUATION = {"application_kind": "new", "aircon": "absent", "agent": "self"}  # 新办, no 集中空调, in person
APPLICANT = {"name": "济南泉城酒店管理有限公司", "kind": "company"}
# One clerk with every role on the path: 一事一人 makes the first clerk to act the case's
# assignee at the counter, so a second clerk at the same counter would be refused.
BENCH_ROLES = ["clerk", "reviewer", "approver"]

ENGINE, SPIFF, PREFECT, PREFECT_NO_HB = "engine", "spiffworkflow", "prefect", "prefect_no_heartbeat"
ENGINE_PAR = "engine_parallel"  # several processes at once; the label says how many
TONGBAN_APP, NAIVE_APP = "api.app:serve_app", "bench.naive_app:create_app"
BARE_APP = "bench.bare_app:create_app"  # the framework-free HTTP ceiling (bench/bare_app.py)
NAIVE_NAME = "naive-fastapi-sqlmodel"  # the textbook endpoint (bench/naive_app.py), same route and load
BARE_NAME = "bare-asgi-uvicorn"
BASELINES = (SPIFF, PREFECT, PREFECT_NO_HB)
SYSTEM_LABELS = {ENGINE: "Tongban engine", ENGINE_PAR: "engine, N processes", SPIFF: "SpiffWorkflow",
                 PREFECT: "Prefect", PREFECT_NO_HB: "Prefect, no heartbeat"}


@dataclass(frozen=True)
class Plan:
    """How much work each part does: ``--quick`` is a smoke run under a minute."""

    engine_cases: int
    spiff_cases: int
    prefect_cases: int  # flow runs = 5 × cases, default settings (≈1 s each)
    prefect_no_hb_cases: int  # heartbeat thread off (≈0.1 s each)
    http_setups: tuple[str, ...]
    http_workers: tuple[int, ...]
    http_seconds: float  # for the saturation run and again for the paced run
    warmup_seconds: float
    raw_transactions: int  # per measurement of the raw transaction (bench/raw_limits.py)


QUICK = Plan(engine_cases=40, spiff_cases=40, prefect_cases=1, prefect_no_hb_cases=2,
             http_setups=("sqlite",), http_workers=(1,), http_seconds=2.0, warmup_seconds=0.5,
             raw_transactions=500)
FULL = Plan(engine_cases=600, spiff_cases=600, prefect_cases=3, prefect_no_hb_cases=10,
            http_setups=("sqlite", "postgres"), http_workers=(1, 2), http_seconds=8.0,
            warmup_seconds=2.0, raw_transactions=5000)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Statistics and the output shape


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass
class Timing:
    """Per-transition wall times of one system doing transitions one after another."""

    samples: list[float] = field(default_factory=list)  # seconds

    @property
    def rate(self) -> float:
        return len(self.samples) / sum(self.samples) if self.samples else math.nan

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples, 99) * 1000


@dataclass
class Limits:
    """Same-run limits (bench/raw_limits.py): medians of ``LIMIT_REPEATS`` measurements each."""

    raw: dict[str, float] = field(default_factory=dict)  # setup → raw transactions/s
    raw_runs: dict[str, list[float]] = field(default_factory=dict)
    bare: dict[int, float] = field(default_factory=dict)  # uvicorn workers → bare ASGI requests/s
    bare_runs: dict[int, list[float]] = field(default_factory=dict)


LIMIT_REPEATS = 3


@dataclass
class HttpResult:
    workers: int
    concurrency: int
    saturated_rate: float  # transitions/s
    saturated_p50_ms: float
    saturated_p99_ms: float
    client_cpu: float  # load generator CPU seconds per wall second, during saturation
    offered_rate: float  # the paced run's schedule
    paced_rate: float  # achieved
    paced_p50_ms: float
    paced_p99_ms: float
    errors_pct: float  # failed requests, saturated and paced runs together
    notes: list[str] = field(default_factory=list)


def _round(v: float) -> float:
    if not math.isfinite(v):
        return v
    digits = 1 if abs(v) >= 100 else 2 if abs(v) >= 1 else 4
    return round(v, digits)


def record(metric: str, value: float, unit: str, better: str, setup: str,
           baseline: tuple[str, float] | None = None) -> dict[str, Any]:
    return {"metric": metric, "value": _round(value), "unit": unit, "better": better,
            "baseline": {"name": baseline[0], "value": _round(baseline[1])} if baseline else None,
            "setup": setup}


def build_records(timings: dict[tuple[str, str], Timing], intakes: dict[str, Timing],
                  http: dict[tuple[str, str, int], HttpResult], setups: Sequence[str],
                  names: dict[str, str], limits: Limits) -> list[dict[str, Any]]:
    """Engine figures once per baseline (so each ratio is computable); baselines ride along."""
    out: list[dict[str, Any]] = []
    metrics: list[tuple[str, str, str, Callable[[Timing], float]]] = [
        ("transitions_per_s", "transitions/s", "higher", lambda t: t.rate),
        ("transition_ms_p50", "ms", "lower", lambda t: t.p50_ms),
        ("transition_ms_p99", "ms", "lower", lambda t: t.p99_ms),
    ]
    for setup in setups:
        engine = timings.get((setup, ENGINE))
        if engine is not None:
            for suffix, unit, better, get in metrics:
                present = [b for b in BASELINES if (setup, b) in timings]
                for b in present or [None]:
                    base = (names[b], get(timings[(setup, b)])) if b else None
                    out.append(record(f"engine.{suffix}", get(engine), unit, better, setup, base))
        par = timings.get((setup, ENGINE_PAR))
        if par is not None:
            single = (names[ENGINE], engine.rate) if engine is not None else None
            out.append(record(f"engine_{names[ENGINE_PAR]}.transitions_per_s", par.rate, "transitions/s",
                              "higher", setup, single))
            out.append(record(f"engine_{names[ENGINE_PAR]}.transition_ms_p50", par.p50_ms, "ms", "lower", setup))
            out.append(record(f"engine_{names[ENGINE_PAR]}.transition_ms_p99", par.p99_ms, "ms", "lower", setup))
        if setup in intakes:
            out.append(record("engine.intake_ms_p50", intakes[setup].p50_ms, "ms", "lower", setup))
        for (s, app, workers), h in sorted(http.items()):
            if s != setup:
                continue
            prefix = f"{'naive_' if app == NAIVE_APP else ''}http_w{workers}"
            naive = http.get((setup, NAIVE_APP, workers)) if app != NAIVE_APP else None
            out.append(record(f"{prefix}.transitions_per_s", h.saturated_rate, "transitions/s", "higher", setup,
                              (NAIVE_NAME, naive.saturated_rate) if naive else None))
            out.append(record(f"{prefix}.transition_ms_p50_half_load", h.paced_p50_ms, "ms", "lower", setup))
            out.append(record(f"{prefix}.transition_ms_p99_half_load", h.paced_p99_ms, "ms", "lower", setup))
            out.append(record(f"{prefix}.errors_pct", h.errors_pct, "%", "lower", setup))
    out += limit_records(timings, http, limits, setups)
    return out


RAW_NAMES = {"sqlite": "raw-sqlite3-transaction", "postgres": "raw-psycopg-pipelined-transaction"}


def limit_records(timings: dict[tuple[str, str], Timing], http: dict[tuple[str, str, int], HttpResult],
                  limits: Limits, setups: Sequence[str]) -> list[dict[str, Any]]:
    """Every Tongban figure as a share of its same-run limit (unit ``ratio``); names are fixed."""
    out: list[dict[str, Any]] = []
    for setup in setups:
        raw = limits.raw.get(setup)
        if raw is None:
            continue
        short = "sqlite" if setup == "sqlite" else "pg"
        out.append(record(f"raw_{short}.transactions_per_s", raw, "transactions/s", "higher", setup))
        if (engine := timings.get((setup, ENGINE))) is not None:
            name = "engine" if setup == "sqlite" else "engine_pg"
            out.append(record(f"{name}.share_of_raw_{short}", engine.rate / raw, "ratio", "higher", setup,
                              (RAW_NAMES[setup], raw)))
    for workers, rate in sorted(limits.bare.items()):
        out.append(record(f"bare_asgi_w{workers}.requests_per_s", rate, "requests/s", "higher", "none"))
    for (setup, app, workers), h in sorted(http.items()):
        if app == NAIVE_APP:
            continue
        prefix = f"http_w{workers}" if setup == "sqlite" else f"http_pg_w{workers}"
        if (raw := limits.raw.get(setup)) is not None:
            short = "sqlite" if setup == "sqlite" else "pg"
            out.append(record(f"{prefix}.share_of_raw_{short}", h.saturated_rate / raw, "ratio", "higher", setup,
                              (RAW_NAMES[setup], raw)))
        if (naive := http.get((setup, NAIVE_APP, workers))) is not None:
            out.append(record(f"{prefix}.x_naive", h.saturated_rate / naive.saturated_rate, "ratio", "higher",
                              setup, (NAIVE_NAME, naive.saturated_rate)))
        if (bare := limits.bare.get(workers)) is not None:
            out.append(record(f"{prefix}.share_of_bare_asgi", h.saturated_rate / bare, "ratio", "higher", setup,
                              (BARE_NAME, bare)))
    return out


def write_results(records: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# Databases


@dataclass
class Db:
    setup: str
    url: str
    engine: sa.Engine
    actor: Actor
    token: str


SPIFF_TABLE = sa.Table(
    "bench_spiff_workflows", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def reset_postgres(url: str) -> None:
    """Create the benchmark database if needed and empty it (never a protected one)."""
    u = sa.make_url(url)
    if not u.database or u.database in PROTECTED_DATABASES:
        raise SystemExit(f"refusing to reset database {u.database!r}: pick a dedicated one")
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": u.database}).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()
    target = sa.create_engine(u, isolation_level="AUTOCOMMIT")
    with target.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    target.dispose()


def prepare(setup: str, workdir: Path, pg_url: str) -> Db:
    """A fresh database at head, the demo catalog and alliance, and one all-roles bench clerk."""
    if setup == "sqlite":
        url = f"sqlite:///{workdir / 'tongban-bench.db'}"
    else:
        url = pg_url
        reset_postgres(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    SPIFF_TABLE.metadata.create_all(engine)
    with session_scope(engine) as s:
        seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml",
             workdir / f"{setup}-demo-tokens.json", 1)
        _, token = add_clerk(s, "压测员", COUNTER, BENCH_ROLES, 1)
    with session_scope(engine) as s:
        actor = authenticate(s, token)
    return Db(setup, url, engine, actor, token)


def create_cases(db: Db, n: int, per_transaction: int = 200) -> list[tuple[str, int]]:
    """Fresh cases in state 已接件, for the HTTP and Prefect runs: (number, version)."""
    out: list[tuple[str, int]] = []
    while len(out) < n:
        with session_scope(db.engine) as s:
            for _ in range(min(per_transaction, n - len(out))):
                case, _ = create_case(s, db.actor, ITEM, APPLICANT, MATERIALS, situation=SITUATION)
                out.append((case["number"], case["version"]))
    return out


# ---------------------------------------------------------------------------------------------
# a. The engine in-process


def run_engine(db: Db, cases: int) -> tuple[Timing, Timing]:
    """Intake then the five transitions per case, each call its own transaction.

    Returns (transitions, intakes); only transitions count towards transitions/s.
    """
    transitions, intakes = Timing(), Timing()
    clock = time.perf_counter
    for _ in range(cases):
        t0 = clock()
        with session_scope(db.engine) as s:
            case, _ = create_case(s, db.actor, ITEM, APPLICANT, MATERIALS, situation=SITUATION)
        intakes.samples.append(clock() - t0)
        number, version = case["number"], case["version"]
        for trigger in PATH:
            t0 = clock()
            with session_scope(db.engine) as s:
                case = advance(s, number, trigger, db.actor, {}, expected_version=version)
            transitions.samples.append(clock() - t0)
            version = case["version"]
        if case["state"] != "completed":
            raise RuntimeError(f"engine: case {number} ended in {case['state']}")
    return transitions, intakes


@dataclass
class Parallel(Timing):
    """Latencies from several processes; the rate is the aggregate over the wall time."""

    wall: float = math.nan

    @property
    def rate(self) -> float:
        return len(self.samples) / self.wall


def _engine_worker(db: Db, cases: list[tuple[str, int]], ready: Any, start: Any, out: Any) -> None:
    """One process of the parallel engine run: its own connections, the same five steps per case."""
    engine = make_engine(db.url)
    clock = time.perf_counter
    samples: list[float] = []
    ready.wait()
    start.wait()
    t_start = clock()
    for number, version in cases:
        for trigger in PATH:
            t0 = clock()
            with session_scope(engine) as s:
                version = advance(s, number, trigger, db.actor, {}, expected_version=version)["version"]
            samples.append(clock() - t0)
    out.put((t_start, clock(), samples))
    engine.dispose()


def run_engine_parallel(db: Db, processes: int, cases_each: int) -> Timing:
    """Several processes advancing their own cases at once, as many counters' clerks do.

    Returns the per-transition latencies; ``rate`` is overridden by the aggregate throughput
    (all transitions over the wall time from the first start to the last finish).
    """
    pools = [create_cases(db, cases_each) for _ in range(processes)]
    db.engine.dispose()  # no connections of ours cross the fork
    ctx = multiprocessing.get_context("fork")
    ready, start, out = ctx.Barrier(processes + 1), ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_engine_worker, args=(db, pool, ready, start, out)) for pool in pools]
    for p in procs:
        p.start()
    ready.wait()
    start.wait()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    samples = [x for _, _, xs in results for x in xs]
    wall = max(end for _, end, _ in results) - min(begin for begin, _, _ in results)
    return Parallel(samples=samples, wall=wall)


# ---------------------------------------------------------------------------------------------
# c(ii). SpiffWorkflow: the same five steps as BPMN user tasks, state serialized in the database


def load_bpmn_spec() -> BpmnProcessSpec:
    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN_FILE))
    return parser.get_spec(ITEM)


def run_spiff(db: Db, cases: int, spec: BpmnProcessSpec) -> tuple[Timing, int]:
    """Each step: load the row, deserialize, complete the ready user task, serialize, save.

    That is what a stateless request handler does with SpiffWorkflow (the engine also loads
    its case row per transition). The save is guarded by a version column, like the engine's.
    Returns the timing and the size of one serialized state in bytes.
    """
    serializer = BpmnWorkflowSerializer()
    timing, size = Timing(), 0
    t = SPIFF_TABLE
    clock = time.perf_counter
    for _ in range(cases):
        workflow = BpmnWorkflow(spec)
        workflow.do_engine_steps()
        with session_scope(db.engine) as s:
            wf_id = s.execute(sa.insert(t).values(version=1, state=serializer.serialize_json(workflow),
                                                  updated_at=datetime.now().astimezone())
                              .returning(t.c.id)).scalar_one()
        for step in PATH:
            t0 = clock()
            with session_scope(db.engine) as s:
                row = s.execute(sa.select(t.c.version, t.c.state).where(t.c.id == wf_id)).one()
                workflow = serializer.deserialize_json(row.state)
                task = workflow.get_next_task(state=TaskState.READY, manual=True)
                if task is None or task.task_spec.name != step:
                    raise RuntimeError(f"spiff: expected user task {step}, found {task}")
                task.run()
                workflow.do_engine_steps()
                state = serializer.serialize_json(workflow)
                done = s.execute(sa.update(t).where(t.c.id == wf_id, t.c.version == row.version)
                                 .values(version=row.version + 1, state=state,
                                         updated_at=datetime.now().astimezone()))
                if done.rowcount != 1:
                    raise RuntimeError("spiff: concurrent update")
            timing.samples.append(clock() - t0)
            size = len(state.encode())
        if not workflow.completed:
            raise RuntimeError("spiff: workflow did not complete")
    return timing, size


# ---------------------------------------------------------------------------------------------
# c(i). Prefect: one flow run per transition


def run_prefect(dbs: Sequence[Db], plan: Plan, home: Path) -> dict[tuple[str, str], Timing]:
    """Runs last: Prefect's ephemeral server is a subprocess that lives until this process exits."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # no per-run console lines
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline machine
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    by_setup = {db.setup: db for db in dbs}

    @flow(name="tongban-advance", persist_result=False)
    def advance_flow(setup: str, number: str, trigger: str, version: int) -> int:
        db = by_setup[setup]
        with session_scope(db.engine) as s:
            return int(advance(s, number, trigger, db.actor, {}, expected_version=version)["version"])

    t0 = time.perf_counter()
    number, version = create_cases(dbs[0], 1)[0]
    advance_flow(dbs[0].setup, number, PATH[0], version)  # starts the server: not measured
    log(f"prefect: first flow run (server start) took {time.perf_counter() - t0:.1f} s")

    out: dict[tuple[str, str], Timing] = {}
    variants = ((PREFECT, plan.prefect_cases, {}),
                (PREFECT_NO_HB, plan.prefect_no_hb_cases, {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
    for name, cases, updates in variants:
        if cases <= 0:
            continue
        with temporary_settings(updates=updates):
            for db in dbs:
                timing = out[(db.setup, name)] = Timing()
                for number, version in create_cases(db, cases):
                    for trigger in PATH:
                        t0 = time.perf_counter()
                        version = advance_flow(db.setup, number, trigger, version)
                        timing.samples.append(time.perf_counter() - t0)
                log(f"{db.setup}: {name}: {len(timing.samples)} flow runs, "
                    f"{timing.rate:.2f} transitions/s")
    return out


# ---------------------------------------------------------------------------------------------
# b. HTTP: uvicorn in a subprocess, a lean asyncio load generator here


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(db: Db, workers: int, workdir: Path, app: str, env_extra: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TONGBAN_DATABASE_URL": db.url, "TONGBAN_DATA_DIR": str(workdir),
           "TONGBAN_EMBEDDED_FLOWS": "false", **(env_extra or {})}  # the API alone: nobody drains the outbox
    cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    log_path = workdir / _log_name(db, workers, app)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, base, log_path)
            yield base
        except BaseException:
            log(f"--- end of {log_path.name}:\n{log_path.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            _stop(proc)


def _log_name(db: Db, workers: int, app: str) -> str:
    kind = {NAIVE_APP: "naive", BARE_APP: "bare"}.get(app, "tongban")
    return f"uvicorn-{db.setup}-{kind}-w{workers}.log"


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log_path: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer /healthz within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own session: the server and its workers
            proc.wait()


class RequestFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Clerk:
    """One clerk's keep-alive HTTP/1.1 connection: just enough client to load the API.

    httpx cost the load generator about 0.3 ms of CPU per request, on the same two cores as the
    server; this writes a request and reads its status line, headers and Content-Length body.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.prefix = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        fresh = self.writer is None
        try:
            return await self._post(path, headers)
        except asyncio.IncompleteReadError as err:
            # The server closed a kept-alive connection that sat idle past its timeout before
            # reading this request (nothing was done): one retry on a new connection, as
            # HTTP clients do.
            if fresh or err.partial:
                raise
            return await self._post(path, headers)

    async def _post(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\n{self.prefix}{extra}\r\n".encode())
        try:
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            found = dict(line.split(": ", 1) for line in head[1:] if line)
            got = {k.lower(): v for k, v in found.items()}
            body = await self.reader.readexactly(int(got.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        if got.get("connection") == "close" or headers.get("Connection") == "close":
            self.close()
        return int(head[0].split(" ", 2)[1]), got, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def fire(clerk: Clerk, number: str, trigger: str, version: int) -> int:
    """One transition; returns the new version from the ETag (no need to parse the body).

    The last step of a case asks the server to close the connection: the next case comes in on
    a new one, as from another clerk, which lets the kernel spread connections over workers.
    """
    headers = {"If-Match": f'"{version}"'}
    if trigger == PATH[-1]:
        headers["Connection"] = "close"
    status, got, body = await clerk.post(f"/api/v1/cases/{number}/triggers/{trigger}", headers)
    if status != 200:
        raise RequestFailed(status, f"{trigger} {number} (If-Match {version}): "
                                    f"HTTP {status} {body[:200].decode(errors='replace')}")
    return int(got["etag"].strip('"').split("-", 1)[0])  # "7-<digest>": If-Match compares the version


@dataclass
class LoadResult:
    count: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    exhausted: bool = False
    slow: list[tuple[float, float]] = field(default_factory=list)  # paced: (sent at s, latency s) over 100 ms

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else math.nan


async def closed_loop(clients: Sequence[Clerk], cases: Iterator[tuple[str, int]],
                      seconds: float) -> LoadResult:
    """One clerk per client (one connection each), advancing case after case as fast as answers come.

    A failed step abandons its case (the clerk takes the next one) and counts as an error.
    """
    res = LoadResult()
    clock = time.perf_counter
    start, cpu0 = clock(), time.process_time()
    deadline = start + seconds

    async def clerk(client: Clerk) -> None:
        while clock() < deadline:
            try:
                number, version = next(cases)
            except StopIteration:
                res.exhausted = True
                return
            for trigger in PATH:
                t0 = clock()
                try:
                    version = await fire(client, number, trigger, version)
                except (RequestFailed, OSError, asyncio.IncompleteReadError) as err:
                    res.errors.append(err)
                    break
                res.latencies.append(clock() - t0)
                res.count += 1
                if clock() >= deadline:
                    return

    await asyncio.gather(*(clerk(c) for c in clients))
    res.elapsed, res.cpu = clock() - start, time.process_time() - cpu0
    return res


async def open_loop(new_clerk: Callable[[], Clerk], cases: Iterator[tuple[str, int]], rate: float,
                    seconds: float) -> LoadResult:
    """Send at a fixed schedule whatever the answers; latency counts from the scheduled time.

    Each send takes the next step of a case whose previous step has been answered (finishing
    cases first), or a fresh case.
    """
    res = LoadResult()
    ready: deque[tuple[str, int, int]] = deque()  # (number, version, index into PATH)
    tasks: set[asyncio.Task[None]] = set()
    clock = time.perf_counter

    idle: list[Clerk] = []  # connections not waiting for an answer

    async def send(number: str, version: int, step: int, scheduled: float) -> None:
        clerk = idle.pop() if idle else new_clerk()
        try:
            version = await fire(clerk, number, PATH[step], version)
        except (RequestFailed, OSError, asyncio.IncompleteReadError) as err:
            res.errors.append(err)
            return
        finally:
            idle.append(clerk)
        res.latencies.append(latency := clock() - scheduled)
        if latency > 0.1:
            res.slow.append((scheduled - start, latency))
        res.count += 1
        if step + 1 < len(PATH):
            ready.appendleft((number, version, step + 1))

    start, cpu0 = clock(), time.process_time()
    for i in itertools.count():
        scheduled = start + i / rate
        if scheduled - start >= seconds:
            break
        if (delay := scheduled - clock()) > 0:
            await asyncio.sleep(delay)
        if ready:
            item = ready.popleft()
        else:
            try:
                number, version = next(cases)
            except StopIteration:
                res.exhausted = True
                continue
            item = (number, version, 0)
        task = asyncio.create_task(send(*item, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    res.elapsed, res.cpu = clock() - start, time.process_time() - cpu0
    return res


async def smoke_test(client: httpx.AsyncClient, clerk: Clerk) -> list[str]:
    """Intake over HTTP (must work), then one full path as the load does; returns what went wrong."""
    r = await client.post("/api/v1/cases", json={"item_code": ITEM, "applicant": APPLICANT,
                                                 "materials": MATERIALS, "situation": SITUATION})
    if r.status_code != 201:
        raise RuntimeError(f"POST /api/v1/cases: HTTP {r.status_code} {r.text[:300]}")
    number, version = r.json()["number"], r.json()["version"]
    try:
        for trigger in PATH:
            version = await fire(clerk, number, trigger, version)
    except RequestFailed as err:
        return [f"smoke test: {err}"]
    state = (await client.get(f"/api/v1/cases/{number}")).json()["state"]["id"]
    return [] if state == "completed" else [f"smoke test: case {number} ended in {state}"]


def describe_errors(errors: Sequence[Exception], attempts: int) -> list[str]:
    if not errors:
        return []
    kinds = Counter(f"HTTP {e.status}" if isinstance(e, RequestFailed) else type(e).__name__ for e in errors)
    summary = ", ".join(f"{k} ×{n}" for k, n in kinds.most_common())
    return [f"{len(errors)} of {attempts} requests failed ({summary}); first: {errors[0]}"]


def run_http(db: Db, workers: int, plan: Plan, workdir: Path, concurrency: int,
             expected_rate: float, app: str, env_extra: dict[str, str] | None = None) -> HttpResult:
    # Cases are made beforehand through the engine, so the server only does transitions. The
    # API is slower than the engine alone; the floor covers an engine figure taken on a busy machine.
    capacity = max(expected_rate, 250.0) * 1.5
    sat_pool = create_cases(db, math.ceil(capacity * plan.http_seconds / len(PATH)) + concurrency)
    warm_pool = create_cases(db, 4 * concurrency)

    async def main(base: str) -> HttpResult:
        url = httpx.URL(base)

        def new_clerk() -> Clerk:
            return Clerk(url.host, url.port or 80, db.token)

        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {db.token}"},
                                     timeout=60) as client:
            notes = await smoke_test(client, new_clerk())

        clerks = [new_clerk() for _ in range(concurrency)]
        await closed_loop(clerks, iter(warm_pool), plan.warmup_seconds)
        sat = await closed_loop(clerks, iter(sat_pool), plan.http_seconds)
        for c in clerks:
            c.close()
        if sat.count == 0:
            raise RuntimeError(f"{app}: no request answered 200; "
                               + "; ".join(notes + describe_errors(sat.errors, len(sat.errors))))
        offered = sat.rate / 2
        paced_pool = create_cases(db, math.ceil(offered * 1.3 * plan.http_seconds / len(PATH)) + 20)
        paced = await open_loop(new_clerk, iter(paced_pool), offered, plan.http_seconds)
        errors = sat.errors + paced.errors
        notes += describe_errors(errors, sat.count + paced.count + len(errors))
        notes += [f"{name} run ran out of cases after {r.elapsed:.1f} s"
                  for name, r in (("saturation", sat), ("paced", paced)) if r.exhausted]
        if paced.slow:  # where a p99 comes from: a stall (one burst of them) or a spread
            at = [t for t, _ in paced.slow]
            notes.append(f"paced: {len(at)} of {paced.count} answers over 100 ms (worst "
                         f"{max(v for _, v in paced.slow) * 1000:.0f} ms), sent {min(at):.1f}–{max(at):.1f} s in")
        return HttpResult(
            workers, concurrency, sat.rate, percentile(sat.latencies, 50) * 1000,
            percentile(sat.latencies, 99) * 1000, sat.cpu / sat.elapsed, offered, paced.rate,
            percentile(paced.latencies, 50) * 1000, percentile(paced.latencies, 99) * 1000,
            100 * len(errors) / max(1, sat.count + paced.count + len(errors)), notes)

    db.engine.dispose()  # no idle pooled connections of ours while the server works
    with server(db, workers, workdir, app, env_extra) as base, \
            asyncio.Runner(loop_factory=_loop_factory()) as runner:
        result = runner.run(main(base))
    if result.errors_pct:
        server_log = (workdir / _log_name(db, workers, app)).read_text(errors="replace")
        log(f"--- server log, last lines:\n{server_log[-4000:]}")
    log(f"{db.setup}: http {'naive' if app == NAIVE_APP else 'tongban'} workers={workers} {env_extra or ''}: "
        f"{result.saturated_rate:.0f} transitions/s saturated "
        f"(client CPU {result.client_cpu:.2f}); at {result.offered_rate:.0f}/s p50 "
        f"{result.paced_p50_ms:.1f} ms, p99 {result.paced_p99_ms:.1f} ms; errors {result.errors_pct:.1f} %"
        + "".join(f"; {n}" for n in result.notes if n.startswith("paced:")))
    return result


def run_bare(db: Db, workers: int, plan: Plan, workdir: Path, concurrency: int) -> list[float]:
    """The bare ASGI endpoint under the same server settings and client: saturated rates."""
    fake = ((f"BARE{i}", 1) for i in itertools.count())

    async def main(base: str) -> list[float]:
        url = httpx.URL(base)
        clerks = [Clerk(url.host, url.port or 80, db.token) for _ in range(concurrency)]
        await closed_loop(clerks, fake, plan.warmup_seconds)
        rates = []
        for _ in range(LIMIT_REPEATS):
            res = await closed_loop(clerks, fake, max(1.0, plan.http_seconds / 2))
            if res.errors or not res.count:
                raise RuntimeError(f"bare ASGI app: {describe_errors(res.errors, res.count + len(res.errors))}")
            rates.append(res.rate)
        for c in clerks:
            c.close()
        return rates

    with server(db, workers, workdir, BARE_APP) as base, asyncio.Runner(loop_factory=_loop_factory()) as runner:
        rates = runner.run(main(base))
    log(f"bare ASGI workers={workers}: {', '.join(f'{r:.0f}' for r in rates)} requests/s")
    return rates


def measure_raw(db: Db, workdir: Path, transactions: int) -> list[float]:
    """The minimal transaction, ``LIMIT_REPEATS`` times; SQLite on a copy of the database."""
    rates = []
    for i in range(LIMIT_REPEATS):
        if db.setup == "sqlite":
            copy = workdir / f"raw-{i}.db"
            src = sqlite3.connect(db.url.split("///", 1)[1])
            dst = sqlite3.connect(copy)
            src.backup(dst)
            src.close()
            dst.close()
            rates.append(raw_limits.raw_sqlite(str(copy), transactions).rate)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
        else:
            rates.append(raw_limits.raw_pg(db.url, transactions).rate)
    log(f"{db.setup}: raw transaction: {', '.join(f'{r:.0f}' for r in rates)} transactions/s")
    return rates


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; the stdlib loop also works
        return None
    return uvloop.new_event_loop


# ---------------------------------------------------------------------------------------------
# d. Group commit (storage.group_commit), off and on in the same run

GROUP_THREADS = 8  # request threads of one process in the engine-level comparison
GROUP_HTTP_ORDER = ("off", "on", "on", "off")  # HTTP runs per measurement, in this order


@dataclass
class Grouped(Parallel):
    """Threads of one process; ``groups`` transactions carried the transitions (group commit on)."""

    groups: int = 0
    cpu: float = 0.0  # this process's CPU seconds over the run (all threads): less load-bound than wall time

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / len(self.samples) if self.samples else math.nan


def run_engine_threads(db: Db, threads: int, cases_each: int, grouped: bool) -> Grouped:
    """``threads`` threads of this process walk their own cases through the path, a transaction
    per transition, as request threads would: one by one, or as units of one group commit (made
    here directly, so PostgreSQL is measured too although the product keeps it per request)."""

    committer = GroupCommitter(db.engine) if grouped else None
    pools = [create_cases(db, cases_each) for _ in range(threads)]
    clock = time.perf_counter
    result = Grouped()
    lock, start = threading.Lock(), threading.Barrier(threads + 1)

    def walk(cases: list[tuple[str, int]]) -> None:
        samples = []
        start.wait()
        for number, version in cases:
            for trigger in PATH:
                t0 = clock()
                if committer is None:
                    with session_scope(db.engine) as s:
                        version = advance(s, number, trigger, db.actor, {}, expected_version=version)["version"]
                else:
                    version = committer.run(lambda s, n=number, t=trigger, v=version: advance(
                        s, n, t, db.actor, {}, expected_version=v)["version"])
                samples.append(clock() - t0)
        with lock:
            result.samples.extend(samples)

    workers = [threading.Thread(target=walk, args=(pool,)) for pool in pools]
    for w in workers:
        w.start()
    start.wait()
    t0, cpu0 = clock(), time.process_time()
    for w in workers:
        w.join()
    result.wall, result.cpu = clock() - t0, time.process_time() - cpu0
    result.groups = committer.groups if committer is not None else len(result.samples)
    return result


def run_group_commit(db: Db, plan: Plan, workdir: Path, concurrency: int) -> dict[tuple[str, str, str], Any]:
    """Engine threads (every setup) and, on SQLite, the HTTP API at the most workers tried, each
    with group commit off and then on."""
    out: dict[tuple[str, str, str], Any] = {}
    cases_each = max(2, plan.engine_cases // (GROUP_THREADS * 2))
    for mode in ("off", "on"):
        t = out[(db.setup, "engine", mode)] = run_engine_threads(db, GROUP_THREADS, cases_each, mode == "on")
        log(f"{db.setup}: engine, {GROUP_THREADS} threads, group commit {mode}: {t.rate:.0f} transitions/s, "
            f"p99 {t.p99_ms:.1f} ms, {len(t.samples) / max(1, t.groups):.1f} transitions per transaction, "
            f"{t.cpu_ms:.2f} ms CPU each")
    if db.setup == "sqlite":
        workers = max(plan.http_workers)
        expected = out[(db.setup, "engine", "off")].rate  # sizes the case pools, as the engine run does
        got: dict[str, list[HttpResult]] = {"off": [], "on": []}
        for mode in GROUP_HTTP_ORDER:  # off and on alternately, so a drift in the load favours neither
            got[mode].append(run_http(db, workers, plan, workdir, concurrency, expected, TONGBAN_APP,
                                      {"TONGBAN_GROUP_COMMIT": "true" if mode == "on" else "false"}))
        for mode, results in got.items():
            out[(db.setup, f"http_w{workers}", mode)] = _median_http(results)
    return out


def _median_http(results: list[HttpResult]) -> HttpResult:
    """Each figure's median over the runs of one mode (notes of all of them)."""
    def med(name: str) -> float:
        return statistics.median(getattr(r, name) for r in results)
    first = results[0]
    return HttpResult(first.workers, first.concurrency, med("saturated_rate"), med("saturated_p50_ms"),
                      med("saturated_p99_ms"), med("client_cpu"), med("offered_rate"), med("paced_rate"),
                      med("paced_p50_ms"), med("paced_p99_ms"), med("errors_pct"),
                      [n for r in results for n in r.notes])


def group_commit_records(group: dict[tuple[str, str, str], Any], plan: Plan) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for (setup, part, mode), r in group.items():
        off = group.get((setup, part, "off")) if mode == "on" else None
        if part == "engine":
            prefix = f"engine_threads{GROUP_THREADS}.group_commit_{mode}"
            out.append(record(f"{prefix}.transitions_per_s", r.rate, "transitions/s", "higher", setup,
                              ("group-commit-off", off.rate) if off else None))
            out.append(record(f"{prefix}.transition_ms_p50", r.p50_ms, "ms", "lower", setup))
            out.append(record(f"{prefix}.transition_ms_p99", r.p99_ms, "ms", "lower", setup))
            out.append(record(f"{prefix}.transitions_per_transaction", len(r.samples) / max(1, r.groups),
                              "transitions", "higher", setup))
            out.append(record(f"{prefix}.cpu_ms_per_transition", r.cpu_ms, "ms", "lower", setup))
        else:
            prefix = f"{part}.group_commit_{mode}"
            out.append(record(f"{prefix}.transitions_per_s", r.saturated_rate, "transitions/s", "higher", setup,
                              ("group-commit-off", off.saturated_rate) if off else None))
            out.append(record(f"{prefix}.transition_ms_p50_half_load", r.paced_p50_ms, "ms", "lower", setup))
            out.append(record(f"{prefix}.transition_ms_p99_half_load", r.paced_p99_ms, "ms", "lower", setup))
            out.append(record(f"{prefix}.errors_pct", r.errors_pct, "%", "lower", setup))
        if off is not None:
            ratio = (r.rate / off.rate) if part == "engine" else (r.saturated_rate / off.saturated_rate)
            name = f"engine_threads{GROUP_THREADS}" if part == "engine" else part
            out.append(record(f"{name}.group_commit_x_off", ratio, "ratio", "higher", setup))
    return out


def group_commit_report(records: Sequence[dict[str, Any]]) -> str:
    rows = [[r["setup"], r["metric"], _fmt(r["value"]), r["unit"]]
            for r in records if ".group_commit_" in r["metric"]]
    if not rows:
        return ""
    return "\nGroup commit off and on, same run (storage.group_commit)\n" + _table(
        ["setup", "metric", "value", "unit"], rows)


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> str:
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    return f"{os.cpu_count()} cores{mem}, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain text columns: the first two left-aligned, figures right-aligned."""
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(x.ljust(w) if i < 2 else x.rjust(w)
                         for i, (x, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def report(timings: dict[tuple[str, str], Timing], intakes: dict[str, Timing],
           http: dict[tuple[str, str, int], HttpResult], spiff_bytes: dict[str, int],
           setups: Sequence[str], title: str) -> str:
    out = [title, ""]
    systems = [s for s in (ENGINE, ENGINE_PAR, *BASELINES) if any((setup, s) in timings for setup in setups)]
    if systems:
        metrics: list[tuple[str, str, Callable[[Timing], float]]] = [
            ("transitions/s", "higher", lambda t: t.rate),
            ("p50 ms", "lower", lambda t: t.p50_ms),
            ("p99 ms", "lower", lambda t: t.p99_ms),
        ]
        rows = []
        for setup in setups:
            for label, better, get in metrics:
                row = [setup, label]
                engine = timings.get((setup, ENGINE))
                for s in systems:
                    t = timings.get((setup, s))
                    if t is None:
                        row.append("-")
                        continue
                    cell = _fmt(get(t))
                    if engine is not None and s not in (ENGINE, ENGINE_PAR):
                        ratio = get(engine) / get(t) if better == "higher" else get(t) / get(engine)
                        cell += f" ({_fmt(ratio)}×)"
                    row.append(cell)
                rows.append(row)
        out += ["In-process, one transaction per transition (×: how many times better the engine is)",
                _table(["setup", "metric", *(SYSTEM_LABELS[s] for s in systems)], rows), ""]
        counts = ", ".join(f"{SYSTEM_LABELS[s]} {len(t.samples)}" for (setup, s), t in timings.items()
                           if setup == setups[0])
        out.append(f"transitions timed per setup: {counts}")
        for setup in setups:
            if setup in intakes:
                out.append(f"{setup}: engine intake (create_case) p50 {_fmt(intakes[setup].p50_ms)} ms")
            if setup in spiff_bytes:
                out.append(f"{setup}: SpiffWorkflow state {spiff_bytes[setup]:,} bytes per save")
        out.append("")
    if http:
        def ratio(setup: str, app: str, h: HttpResult) -> str:
            naive = http.get((setup, NAIVE_APP, h.workers))
            return "-" if app == NAIVE_APP or naive is None else f"{_fmt(h.saturated_rate / naive.saturated_rate)}×"

        order = sorted(http.items(), key=lambda kv: (setups.index(kv[0][0]), kv[0][1] == NAIVE_APP, kv[0][2]))
        rows = [[setup, "naive" if app == NAIVE_APP else "tongban", str(h.workers), str(h.concurrency),
                 *map(_fmt, (h.saturated_rate,)), ratio(setup, app, h),
                 *map(_fmt, (h.saturated_p50_ms, h.saturated_p99_ms, h.client_cpu,
                             h.offered_rate, h.paced_rate, h.paced_p50_ms, h.paced_p99_ms)),
                 f"{h.errors_pct:.1f} %"]
                for (setup, app, _), h in order]
        out += ["HTTP: uvicorn subprocess, asyncio load generator in this process (keep-alive); "
                "naive: the textbook FastAPI + SQLModel endpoint (bench/naive_app.py), ×: Tongban over it",
                _table(["setup", "app", "workers", "conns", "max t/s", "× naive", "p50 ms", "p99 ms", "client cpu",
                        "paced t/s", "achieved", "p50 ms", "p99 ms", "errors"], rows)]
        out += [f"  {setup} {'naive' if app == NAIVE_APP else 'tongban'} w{w}: {note}"
                for (setup, app, w), h in http.items() for note in h.notes]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


def profile_engine(db: Db, cases: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    run_engine(db, cases)
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    return buf.getvalue()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    p.add_argument("--setups", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--parts", default="limits,engine,spiff,http,prefect,group",
                   help="comma-separated subset of limits,engine,spiff,http,prefect,group")
    p.add_argument("--runs", type=int, default=1,
                   help="repeat the whole measurement; records are the medians (each keeps every run's value)")
    p.add_argument("--pg-url", default=os.environ.get("TONGBAN_BENCH_TRANSITIONS_PG_URL", DEFAULT_PG_URL),
                   help="PostgreSQL database to (re)create and empty; never 'test'")
    p.add_argument("--concurrency", type=int, default=8, help="clerks (connections) in the saturated HTTP run")
    p.add_argument("--engine-processes", type=int, default=4,
                   help="processes in the parallel engine run (0: skip it)")
    p.add_argument("--workers", help="uvicorn worker counts to try, comma-separated (default: 1 quick, 1,2 full)")
    p.add_argument("--http-seconds", type=float, help="length of the saturated and of the paced HTTP run")
    p.add_argument("--no-naive", action="store_true",
                   help="skip the baseline HTTP run of the textbook FastAPI + SQLModel endpoint")
    p.add_argument("--app", default=TONGBAN_APP,
                   help="the ASGI app factory uvicorn serves (to compare a variant)")
    p.add_argument("--prefect-home", type=Path,
                   default=Path(tempfile.gettempdir()) / "tongban-bench-prefect",
                   help="PREFECT_HOME (kept between runs: the first start migrates its database)")
    p.add_argument("--out", type=Path, default=RESULTS_FILE)
    p.add_argument("--profile", action="store_true",
                   help="afterwards, cProfile the engine loop on the first setup and print the top")
    args = p.parse_args(argv)
    args.setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    args.parts = {s.strip() for s in args.parts.split(",") if s.strip()}
    args.workers = tuple(int(w) for w in args.workers.split(",")) if args.workers else None
    if bad := set(args.setups) - {"sqlite", "postgres"}:
        p.error(f"unknown setups: {', '.join(sorted(bad))}")
    if bad := args.parts - {"limits", "engine", "spiff", "http", "prefect", "group"}:
        p.error(f"unknown parts: {', '.join(sorted(bad))}")
    return args


def run_once(args: argparse.Namespace, plan: Plan, names: dict[str, str]) -> tuple[list[dict[str, Any]], str, str]:
    """One full measurement: (records, printed table, profile)."""
    load = os.getloadavg()
    if load[0] > (os.cpu_count() or 1) / 2:
        log(f"warning: load average {load[0]:.1f} on {os.cpu_count()} cores: figures will be low and noisy")
    timings: dict[tuple[str, str], Timing] = {}
    intakes: dict[str, Timing] = {}
    spiff_bytes: dict[str, int] = {}
    http: dict[tuple[str, str, int], HttpResult] = {}
    limits = Limits()
    group: dict[tuple[str, str, str], Timing | HttpResult] = {}  # (setup, "engine"|"http", off|on)
    spec = load_bpmn_spec() if "spiff" in args.parts else None

    with tempfile.TemporaryDirectory(prefix="tongban-bench-") as tmp:
        workdir = Path(tmp)
        dbs = [prepare(setup, workdir, args.pg_url) for setup in args.setups]
        for db in dbs:
            run_engine(db, 5)  # warm-up: compiled machine, connection pool
            if "limits" in args.parts:
                runs = limits.raw_runs[db.setup] = measure_raw(db, workdir, plan.raw_transactions)
                limits.raw[db.setup] = statistics.median(runs)
            if "engine" in args.parts:
                timings[(db.setup, ENGINE)], intakes[db.setup] = run_engine(db, plan.engine_cases)
                log(f"{db.setup}: engine: {timings[(db.setup, ENGINE)].rate:.0f} transitions/s")
                if args.engine_processes:
                    each = max(1, plan.engine_cases // args.engine_processes)
                    par = timings[(db.setup, ENGINE_PAR)] = run_engine_parallel(db, args.engine_processes, each)
                    log(f"{db.setup}: engine, {args.engine_processes} processes: {par.rate:.0f} transitions/s")
            if spec is not None:
                run_spiff(db, 2, spec)
                timings[(db.setup, SPIFF)], spiff_bytes[db.setup] = run_spiff(db, plan.spiff_cases, spec)
                log(f"{db.setup}: spiffworkflow: {timings[(db.setup, SPIFF)].rate:.0f} transitions/s")
            if "http" in args.parts and db.setup in plan.http_setups:
                expected = timings[(db.setup, ENGINE)].rate if (db.setup, ENGINE) in timings else 1000.0
                for workers in plan.http_workers:
                    http[(db.setup, args.app, workers)] = run_http(db, workers, plan, workdir, args.concurrency,
                                                                   expected, args.app)
                if not args.no_naive:  # the baseline, at the most workers tried
                    workers = max(plan.http_workers)
                    http[(db.setup, NAIVE_APP, workers)] = run_http(db, workers, plan, workdir, args.concurrency,
                                                                    expected, NAIVE_APP)
            if "group" in args.parts:
                group.update(run_group_commit(db, plan, workdir, args.concurrency))
        if "http" in args.parts and "limits" in args.parts and dbs:
            for workers in plan.http_workers:
                runs = limits.bare_runs[workers] = run_bare(dbs[0], workers, plan, workdir, args.concurrency)
                limits.bare[workers] = statistics.median(runs)
        if "prefect" in args.parts:
            timings.update(run_prefect(dbs, plan, args.prefect_home))
        profile = profile_engine(dbs[0], 200) if args.profile else ""
        for db in dbs:
            db.engine.dispose()

    load_end = os.getloadavg()
    records = build_records(timings, intakes, http, args.setups, names, limits)
    records += group_commit_records(group, plan)
    for r in records:  # the machine is shared: every figure says how busy it was
        r["load_average"] = {"start": round(load[0], 2), "end": round(load_end[0], 2)}
    title = (f"Tongban transitions benchmark ({'quick' if args.quick else 'full'} run), "
             f"{datetime.now().astimezone():%Y-%m-%d %H:%M %z}\n"
             f"{machine()}, load average {load[0]:.2f} at start, {load_end[0]:.2f} at the end\n"
             f"item {ITEM}, path {' → '.join(PATH)}")
    text = report(timings, intakes, http, spiff_bytes, args.setups, title)
    text += "\n" + limits_report(records) + group_commit_report(records)
    return records, text, profile


def limits_report(records: Sequence[dict[str, Any]]) -> str:
    rows = [[r["setup"], r["metric"], _fmt(r["value"]), r["baseline"]["name"] if r["baseline"] else "",
             _fmt(r["baseline"]["value"]) if r["baseline"] else ""]
            for r in records if r["unit"] == "ratio" or r["metric"].startswith(("raw_", "bare_"))]
    if not rows:
        return ""
    return ("\nSame-run limits (bench/raw_limits.py, bench/bare_app.py), and each figure as a share of its limit\n"
            + _table(["setup", "metric", "value", "limit / baseline", "its value"], rows))


def merge_runs(runs: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Medians over runs, per (metric, setup, baseline); each record keeps every run's value."""
    order: list[tuple[str, str, str | None]] = []
    groups: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
    for records in runs:
        for r in records:
            key = (r["metric"], r["setup"], r["baseline"]["name"] if r["baseline"] else None)
            if key not in groups:
                order.append(key)
            groups.setdefault(key, []).append(r)
    out = []
    for key in order:
        rs = groups[key]
        first = dict(rs[0])
        first["value"] = _round(statistics.median(r["value"] for r in rs))
        if first["baseline"]:
            first["baseline"] = {"name": key[2], "value": _round(statistics.median(r["baseline"]["value"] for r in rs))}
        first["runs"] = [r["value"] for r in rs]
        first["load_average"] = [r["load_average"] for r in rs]
        out.append(first)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.workers or args.http_seconds:
        plan = replace(plan, http_workers=args.workers or plan.http_workers,
                       http_seconds=args.http_seconds or plan.http_seconds,
                       http_setups=tuple(args.setups))
    started = time.perf_counter()
    names = {ENGINE: "tongban-engine-1-process", ENGINE_PAR: f"{args.engine_processes}-processes",
             SPIFF: f"spiffworkflow-{package_version('spiffworkflow')}",
             PREFECT: f"prefect-{package_version('prefect')}-flow-per-transition",
             PREFECT_NO_HB: f"prefect-{package_version('prefect')}-flow-per-transition-no-heartbeat"}
    runs = []
    for i in range(args.runs):
        log(f"run {i + 1} of {args.runs}")
        records, text, profile = run_once(args, plan, names)
        runs.append(records)
        print(text + "\n", flush=True)
        if profile:
            print(profile)
        records = merge_runs(runs)
        write_results(records, args.out)  # after every run: a later run's failure keeps the earlier ones
    if args.runs > 1:
        print(f"Medians of {args.runs} runs\n" + limits_report(records))
    print(f"\n{len(records)} records written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
