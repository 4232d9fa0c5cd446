"""Dashboard benchmark: supervisor dashboard data, a counter's queue page and a case page on PostgreSQL.

Fills a database of its own (default ``tb_bench_dash``) with the demo alliance plus synthetic
regions and counters, N cases (5 % open, the rest finished over the past year), ten history
events per case and a hand-off job per cross-region case, all generated inside PostgreSQL with
``INSERT … SELECT generate_series``. Then it times, through the real app in-process (routing,
cookie session, SQL, Jinja rendering), with p50/p95 over many requests:

* ``GET /api/v1/dashboard`` as a supervisor of ten regions (and filtered to one region);
* ``GET /ui/queue`` as a clerk of a busy counter;
* ``GET /ui/cases/{number}`` for random cases of that counter.

Full size: 1,000,000 cases / 10,000,000 events; ``--quick``: 10,000 / 100,000.
Writes ``bench/results/dashboard.json`` in the shared benchmark shape.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import ROOT
from engine import catalog
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

RESULTS = ROOT / "bench" / "results" / "dashboard.json"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tb_bench_dash"
EXTRA_REGIONS = 36
COUNTERS_PER_REGION = 4
EVENTS_PER_CASE = 10
OPEN_EVERY = 20  # one case in 20 is still open


def _reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate.upgrade(engine)


def _alliance(conn: sa.Connection) -> list[str]:
    """Synthetic regions and counters taking every simple item; returns all counter ids."""
    conn.execute(sa.text(
        "INSERT INTO regions (code, name) SELECT (900000 + g)::text, '合成区域' || g "
        "FROM generate_series(1, :n) g"), {"n": EXTRA_REGIONS})
    conn.execute(sa.text(
        "INSERT INTO counters (id, name, unit, region_code) "
        "SELECT 'syn-' || r || '-' || k, '合成区域' || r || ' 第' || k || '窗口', '合成单位', (900000 + r)::text "
        "FROM generate_series(1, :n) r, generate_series(1, :k) k"), {"n": EXTRA_REGIONS, "k": COUNTERS_PER_REGION})
    return list(conn.execute(sa.text("SELECT id FROM counters ORDER BY id")).scalars())


def _items(engine: sa.Engine) -> list[dict[str, Any]]:
    """Items without department roles (two-party cases), with their open, non-parallel states."""
    out = []
    with session_scope(engine) as s:
        for it in catalog.list_items(s):
            row = catalog.latest_version(s, it["code"])
            d = catalog.compiled(s, row.id).definition
            if d.roles:
                continue
            open_states = [st.id for st in d.states if not st.final and not st.parallel]
            final = next(st.id for st in d.states if st.final and st.outcome == "approved")
            out.append({"code": d.code, "vid": row.id, "open": open_states, "final": final})
    return out


def _generate(engine: sa.Engine, n_cases: int, log: Callable[[str], None]) -> None:
    items = _items(engine)
    with engine.begin() as conn:
        counters = _alliance(conn)
        # Four clerks per counter; a case sticks to one of its intake counter's clerks (一事一人).
        conn.execute(sa.text(
            "INSERT INTO clerks (name, counter_id, roles, active) SELECT '压测' || k.id || '-' || n, k.id, "
            "'clerk,reviewer,approver', true FROM counters k, generate_series(1, 4) n ORDER BY k.id, n"))
        hist_cols = {c["name"] for c in sa.inspect(conn).get_columns("history")}
        case_cols = {c["name"] for c in sa.inspect(conn).get_columns("cases")}
    nc = len(counters)
    arr = lambda xs: "ARRAY[" + ",".join(f"'{x}'" for x in xs) + "]"  # noqa: E731 (trusted literals)
    item_codes = arr([i["code"] for i in items])
    item_vids = "ARRAY[" + ",".join(str(i["vid"]) for i in items) + "]"
    finals = arr([i["final"] for i in items])
    # One open-state list per item, padded to a rectangle for a 2-D array.
    width = max(len(i["open"]) for i in items)
    opens = "ARRAY[" + ",".join(arr((i["open"] * width)[:width]) for i in items) + "]"
    lens = "ARRAY[" + ",".join(str(len(i["open"])) for i in items) + "]"
    ni = len(items)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.execute(sa.text(f"""
            INSERT INTO cases (id, number, item_version_id, item_code, mode, state, branches, status_code,
                               intake_counter_id, competent_counter_id, parties, assignees, applicant,
                               query_code_hash, commitment, created_at, updated_at, promised_due, legal_due,
                               finished_at, version{', last_hash' if 'last_hash' in case_cols else ''})
            SELECT g, 'B' || lpad(g::text, 12, '0'), ({item_vids})[1 + g % {ni}], ({item_codes})[1 + g % {ni}],
                   CASE WHEN ic <> cc THEN '异地代收代办' ELSE '全程网办' END,
                   CASE WHEN open THEN ({opens})[1 + g % {ni}][1 + (g / {ni}) % ({lens})[1 + g % {ni}]]
                        ELSE ({finals})[1 + g % {ni}] END,
                   NULL, CASE WHEN open THEN 3 ELSE 11 END, ic, cc,
                   json_build_object('intake', ic, 'competent', cc),
                   json_build_object(ic, (SELECT min(id) FROM clerks WHERE counter_id = ic) + g % 4),
                   json_build_object('name', '申请人' || g, 'kind', 'company'),
                   md5(g::text), NULL, created, created + interval '9 hours',
                   (created + interval '20 days')::date, (created + interval '30 days')::date,
                   CASE WHEN open THEN NULL ELSE created + ((g % 15) || ' days')::interval END,
                   {EVENTS_PER_CASE}{', NULL' if 'last_hash' in case_cols else ''}
            FROM (
              SELECT g, open, counters[1 + abs(hashint4(g)) % {nc}] AS ic,
                     counters[1 + abs(hashint4(CASE WHEN g % 10 < 7 THEN g ELSE -g END)) % {nc}] AS cc,
                     CASE WHEN open THEN now() - ((g / {OPEN_EVERY}) % 40 || ' days')::interval
                          ELSE now() - interval '41 days' - ((g % 365) || ' days')::interval END
                       - ((g % 86400) || ' seconds')::interval AS created
              FROM (SELECT g, g % {OPEN_EVERY} = 0 AS open FROM generate_series(1, :n) g) s,
                   (SELECT ARRAY(SELECT id FROM counters ORDER BY id) AS counters) c
            ) x"""), {"n": n_cases})
        log(f"cases: {time.perf_counter() - t0:.1f}s")
        conn.execute(sa.text("""
            INSERT INTO case_holders (case_id, counter_id)
            SELECT id, competent_counter_id FROM cases WHERE finished_at IS NULL"""))
        extra = (", hash" if "hash" in hist_cols else "", ", ''" if "hash" in hist_cols else "")
        conn.execute(sa.text(f"""
            INSERT INTO history (case_id, seq, at, kind, actor_id, actor_name, counter_id, trigger,
                                 from_state, to_state, comment, data{extra[0]})
            SELECT c.id, s, c.created_at + (s || ' hours')::interval,
                   CASE WHEN s = 1 THEN 'intake' WHEN s % 4 = 0 THEN 'material' ELSE 'transition' END,
                   NULL, '压测', CASE WHEN s <= 3 THEN c.intake_counter_id ELSE c.competent_counter_id END,
                   CASE WHEN s = 1 THEN NULL ELSE 'step' END, NULL, c.state, NULL, NULL{extra[1]}
            FROM cases c, generate_series(1, {EVENTS_PER_CASE}) s"""))
        log(f"history: {time.perf_counter() - t0:.1f}s")
        conn.execute(sa.text("""
            INSERT INTO outbox (id, case_id, job, region_code, counter_id, payload, status, attempts,
                                created_at, finished_at)
            SELECT md5('h' || c.id), c.id, 'handoff', k.region_code, c.competent_counter_id,
                   json_build_object('number', c.number, 'from_counter', c.intake_counter_id,
                                     'to_counter', c.competent_counter_id),
                   CASE WHEN c.id % 50 = 0 THEN 'pending' ELSE 'done' END, 1,
                   c.created_at + interval '3 hours',
                   CASE WHEN c.id % 50 = 0 THEN NULL
                        ELSE c.created_at + interval '3 hours' + ((c.id % 240) || ' minutes')::interval END
            FROM cases c JOIN counters k ON k.id = c.competent_counter_id
            WHERE c.intake_counter_id <> c.competent_counter_id"""))
        log(f"outbox: {time.perf_counter() - t0:.1f}s")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM ANALYZE")
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
    log(f"analyzed: {time.perf_counter() - t0:.1f}s")


def _client(engine: sa.Engine, token: str) -> TestClient:
    app = create_app(engine)
    client = TestClient(app)
    client.__enter__()  # one event-loop portal for all requests, as a server would have
    form = client.get("/ui/login").text  # the form's pre-session cookie and token, as a browser gets them
    csrf = form.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
    r = client.post("/ui/login", data={"token": token, "login_csrf": csrf}, headers={"Origin": "http://testserver"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def _time(client: TestClient, urls: list[str], warm: int = 3) -> dict[str, float]:
    for u in urls[:warm]:
        assert client.get(u).status_code == 200, u
    samples = []
    for u in urls:
        t = time.perf_counter()
        r = client.get(u)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (u, r.status_code, r.text[:300])
    samples.sort()
    return {"p50": statistics.median(samples), "p95": samples[int(0.95 * (len(samples) - 1))],
            "n": len(samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k cases / 100k events, a smoke run")
    ap.add_argument("--cases", type=int, default=None)
    ap.add_argument("--url", default=os.environ.get("TONGBAN_BENCH_PG_URL", DEFAULT_URL))
    ap.add_argument("--reuse", action="store_true", help="keep the data of a previous run")
    ap.add_argument("--runs", type=int, default=None)
    args = ap.parse_args()
    n_cases = args.cases or (10_000 if args.quick else 1_000_000)
    runs = args.runs or (40 if args.quick else 200)
    engine = make_engine(args.url)
    # Tokens are shown once at seeding: keep them beside the database for --reuse runs.
    tokens_file = Path(tempfile.gettempdir()) / f"tongban-bench-dashboard-{engine.url.database}.json"
    log = lambda m: print(f"[dashboard] {m}", flush=True)  # noqa: E731
    if not args.reuse:
        _reset(engine)
        tokens_file.unlink(missing_ok=True)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"] for t in seed(s, ROOT / "catalog" / "items",
                                                      ROOT / "catalog" / "alliance.yaml", tokens_file, 30)}
    if not args.reuse:
        _generate(engine, n_cases, log)
    with engine.begin() as conn:
        # The bench supervisor (赵督查) watches the three demo regions plus seven synthetic ones.
        sid = conn.execute(sa.text("SELECT id FROM clerks WHERE name = '赵督查'")).scalar_one()
        conn.execute(sa.text("""INSERT INTO supervisor_regions (clerk_id, region_code)
            SELECT :sid, code FROM regions WHERE code LIKE '9%' ORDER BY code LIMIT 7
            ON CONFLICT DO NOTHING"""), {"sid": sid})
        n_cases = conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
        n_events = conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()
        n_open = conn.execute(sa.text("SELECT count(*) FROM case_holders")).scalar_one()
        scope_open = conn.execute(sa.text("""SELECT count(*) FROM case_holders h JOIN counters k
            ON k.id = h.counter_id JOIN supervisor_regions r ON r.region_code = k.region_code
            WHERE r.clerk_id = :sid"""), {"sid": sid}).scalar_one()
        busy = conn.execute(sa.text("SELECT count(*) FROM case_holders WHERE counter_id = 'qd-xihai'")).scalar_one()
        numbers = list(conn.execute(sa.text(
            "SELECT number FROM cases WHERE intake_counter_id = 'qd-xihai' OR competent_counter_id = 'qd-xihai' "
            "ORDER BY md5(number) LIMIT :n"), {"n": runs}).scalars())
    log(f"{n_cases} cases, {n_events} events, {n_open} open ({scope_open} in the supervisor's scope, "
        f"{busy} at qd-xihai)")
    sup, clerk = _client(engine, tokens["赵督查"]), _client(engine, tokens["李强"])
    dash = _time(sup, ["/api/v1/dashboard"] * runs)
    dash_region = _time(sup, ["/api/v1/dashboard?region=370211&days=7"] * runs)
    queue = _time(clerk, ["/ui/queue"] * runs)
    case = _time(clerk, [f"/ui/cases/{n}" for n in numbers])
    # Other work on the machine inflates the tail: keep the 1-minute load average with the figures.
    load = os.getloadavg()[0]
    setup = (f"postgres, {n_cases} cases, {n_events} events, {n_open} open; in-process app, "
             f"{os.cpu_count()} cores, load average {load:.1f} during the run, {platform.node()}")
    results = [
        {"metric": "dashboard data p95 (supervisor of 10 regions, 30 days)", "value": round(dash["p95"], 1),
         "unit": "ms", "better": "lower", "baseline": {"name": "target", "value": 200}, "setup": setup},
        {"metric": "dashboard data p50 (supervisor of 10 regions, 30 days)", "value": round(dash["p50"], 1),
         "unit": "ms", "better": "lower", "baseline": None, "setup": setup},
        {"metric": "dashboard data p95 (one region, 7 days)", "value": round(dash_region["p95"], 1),
         "unit": "ms", "better": "lower", "baseline": {"name": "target", "value": 200}, "setup": setup},
        {"metric": "queue page p95", "value": round(queue["p95"], 1), "unit": "ms", "better": "lower",
         "baseline": {"name": "target", "value": 50}, "setup": setup},
        {"metric": "queue page p50", "value": round(queue["p50"], 1), "unit": "ms", "better": "lower",
         "baseline": None, "setup": setup},
        {"metric": "case page p95", "value": round(case["p95"], 1), "unit": "ms", "better": "lower",
         "baseline": {"name": "target", "value": 50}, "setup": setup},
        {"metric": "case page p50", "value": round(case["p50"], 1), "unit": "ms", "better": "lower",
         "baseline": None, "setup": setup},
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for r in results:
        print(f"{r['metric']:<58} {r['value']:>8} {r['unit']}")


if __name__ == "__main__":
    main()
