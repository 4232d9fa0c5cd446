"""Hand-off benchmark: forward → 接件 at the destination, and approve → certificate stored, across
regions in the distributed setup (PostgreSQL case database, PostgreSQL-backed Prefect server).

* listening: ``flows.listen`` — one long-running flow run for the destination region, woken by
  PostgreSQL LISTEN/NOTIFY when the forwarding transaction commits; a task run per job;
* baseline, same run and databases: what the distributed setup did before — ``tongban dispatch``
  (polling each second) starting a ``drain-outbox`` flow run on the region's pool, run by
  ``prefect worker start`` (a process per flow run).

The clock starts when the ``accept`` (forward) or ``approve`` transaction commits and stops when
the hand-off job's effect (接件 at the destination counter) or the certificate row is visible.
Writes ``bench/results/handoff.json`` in the shared shape; ``--quick`` is a smoke run.

    python bench/bench_handoff.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/tb_bench \\
        --prefect-postgres postgresql+asyncpg://postgres@127.0.0.1:5432/tb_bench_prefect
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="tongban-bench-handoff-"))
os.environ.setdefault("PREFECT_HOME", str(TMP / "prefect"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ["TONGBAN_OBJECT_DIR"] = str(TMP / "objects")
os.environ["PREFECT_WORKER_QUERY_SECONDS"] = "1"

import sqlalchemy as sa  # noqa: E402
from prefect_local import fresh, start_prefect_server  # noqa: E402

from engine.actors import authenticate  # noqa: E402
from engine.advance import advance  # noqa: E402
from engine.demo import seed  # noqa: E402
from engine.intake import create_case  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402

A, B = "370100", "370211"
MATERIALS = {m: "received" for m in ("application_form", "legal_rep_id", "floor_plans",
                                     "hygiene_report", "hygiene_rules")}
SITUATION = {"application_kind": "new", "aircon": "absent", "agent": "self"}  # 新办, no 集中空调, in person
APPLICANT = {"name": "青岛某某酒店管理有限公司", "kind": "person", "phone": "13700137000",
             "address": "山东省青岛市黄岛区滨海大道 88 号"}


def setup(url: str) -> tuple[sa.Engine, dict[str, Any]]:
    fresh(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"] for t in seed(
            s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml", TMP / "tokens.json", 30)}
        actors = {who: authenticate(s, tokens[who]) for who in ("王芳", "李强")}
    return engine, actors


def wait_for(engine: sa.Engine, sql: str, number: str, timeout: float = 120) -> float:
    t = time.perf_counter()
    while True:
        with engine.connect() as conn:
            if conn.execute(sa.text(sql), {"n": number}).first():
                return time.perf_counter() - t
        if time.perf_counter() - t > timeout:
            raise RuntimeError(f"{number}: nothing after {timeout} s ({sql})")
        time.sleep(0.005)


HANDED = ("SELECT 1 FROM outbox o JOIN cases k ON k.id = o.case_id WHERE k.number = :n "
          "AND o.job = 'handoff' AND o.status = 'done'")
IN_REVIEW = "SELECT 1 FROM cases WHERE number = :n AND state = 'review'"
CERTIFIED = "SELECT 1 FROM certificates c JOIN cases k ON k.id = c.case_id WHERE k.number = :n"


def settled(engine: sa.Engine, timeout: float = 180) -> None:
    """Wait until no job is pending or running, and a moment more: each case starts from quiet,
    not inside a drain still busy with the previous case's follow-ups (which would take the new
    hand-off at once and flatter the baseline)."""
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        with engine.connect() as conn:
            busy = conn.execute(sa.text(
                "SELECT count(*) FROM outbox WHERE status IN ('pending', 'running')")).scalar_one()
        if not busy:
            break
        time.sleep(0.05)
    time.sleep(2.0)


def one_case(engine: sa.Engine, actors: dict[str, Any], certificate: bool) -> tuple[float, float | None]:
    """Forward a case from A to B; optionally carry it on to its certificate. Returns the times."""
    settled(engine)
    with session_scope(engine) as s:
        case, _ = create_case(s, actors["王芳"], "GGCSWSXK", APPLICANT, MATERIALS, competent_region=B,
                              situation=SITUATION)
        number = case["number"]
    with session_scope(engine) as s:
        advance(s, number, "accept", actors["王芳"])
    handed = wait_for(engine, HANDED, number)
    if not certificate:
        return handed, None
    with session_scope(engine) as s:
        advance(s, number, "request_auto_review", actors["李强"])
    wait_for(engine, IN_REVIEW, number)
    settled(engine)
    with session_scope(engine) as s:
        advance(s, number, "approve", actors["李强"])
    return handed, wait_for(engine, CERTIFIED, number)


def child_env(case_url: str) -> dict[str, str]:
    return {**os.environ, "TONGBAN_DATABASE_URL": case_url, "PYTHONPATH": str(ROOT),
            "TONGBAN_PUBLIC_BASE_URL": "https://tongban.example.gov.cn", "TONGBAN_OBJECT_DIR_SHARED": "true"}


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_listening(engine: sa.Engine, actors: dict[str, Any], url: str, n: int) -> tuple[list[float], list[float]]:
    procs = [subprocess.Popen([sys.executable, "-m", "flows.listen", "--region", region], cwd=ROOT,
                              env=child_env(url), start_new_session=True) for region in (A, B)]
    try:
        one_case(engine, actors, certificate=True)  # warm-up: the flow run starts, modules load
        results = [one_case(engine, actors, certificate=True) for _ in range(n)]
    finally:
        for proc in procs:
            stop(proc)
    return [h for h, _ in results], [c for _, c in results if c is not None]


def run_dispatched(engine: sa.Engine, actors: dict[str, Any], url: str, api: str,
                   n: int) -> tuple[list[float], list[float]]:
    from flows.deploy import deploy, ensure_pool
    from flows.dispatch import Dispatcher

    for region in (A, B):
        ensure_pool(api, f"counter-{region}")
    deploy(api, [f"drain-outbox/counter-{A}", f"drain-outbox/counter-{B}"])
    workers = [subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool",
                                 f"counter-{region}", "--type", "process"], cwd=ROOT,
                                env=child_env(url), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True) for region in (A, B)]
    done = threading.Event()
    dispatcher = Dispatcher(engine, api)

    def loop() -> None:  # `tongban dispatch`, polling each second as it does by default
        while not done.is_set():
            dispatcher.dispatch_once()
            done.wait(1.0)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        one_case(engine, actors, certificate=False)  # warm-up
        results = [one_case(engine, actors, certificate=True) for _ in range(n)]
    finally:
        done.set()
        thread.join(5)
        for w in workers:
            stop(w)
    return [h for h, _ in results], [c for _, c in results if c is not None]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run")
    ap.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/tb_bench_handoff")
    ap.add_argument("--prefect-postgres",
                    default="postgresql+asyncpg://postgres@127.0.0.1:5432/tb_bench_handoff_prefect")
    ap.add_argument("--baseline", type=int, default=None, help="cases through the dispatcher baseline")
    args = ap.parse_args()
    n_listen, n_base = (5, 2) if args.quick else (30, 6)
    n_base = args.baseline if args.baseline is not None else n_base
    server, api = start_prefect_server(args.prefect_postgres)
    try:
        engine, actors = setup(args.postgres)
        from flows import drain

        drain.use_engine(engine)
        hand, cert = run_listening(engine, actors, args.postgres, n_listen)
        base_hand, base_cert = run_dispatched(engine, actors, args.postgres, api, n_base) if n_base else ([], [])
    finally:
        server.terminate()
        server.wait(30)
    where = (f"PostgreSQL case database, Prefect 3.8.8 server on PostgreSQL, {os.cpu_count()} cores, "
             f"{n_listen} cases listening, {n_base} dispatched")
    results: list[dict[str, Any]] = []
    for label, xs, base, goal in (("forward → 接件 at the destination", hand, base_hand, (1.0, 2.0)),
                                  ("approve → certificate stored", cert, base_cert, (2.0, None))):
        for q, name in ((0.5, "p50"), (0.95, "p95")):
            results.append({
                "metric": f"{label}, {name} (long-running drainer, LISTEN/NOTIFY)",
                "value": round(pct(xs, q), 3), "unit": "s", "better": "lower",
                "baseline": ({"name": "tongban dispatch + a flow run per drain (process worker)",
                              "value": round(pct(base, q), 3)} if base else None),
                "setup": where + (f"; goal {name} < {goal[0 if q == 0.5 else 1]} s"
                                  if goal[0 if q == 0.5 else 1] else "")})
    out = ROOT / "bench" / "results" / "handoff.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for r in results:
        b = f" (baseline {r['baseline']['value']} s)" if r["baseline"] else ""
        print(f"{r['metric']}: {r['value']} s{b}")
    print(f"median of {len(hand)}: {statistics.median(hand):.3f} s → {out}")


if __name__ == "__main__":
    main()
