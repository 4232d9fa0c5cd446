"""Search at scale: ``GET /api/v1/cases?q=`` over N real case rows, on SQLite or PostgreSQL.

A freshly migrated database gets the demo catalog and alliance plus synthetic counters, then N
case rows bulk-inserted straight into ``cases`` (raw inserts, COPY on PostgreSQL — not the engine)
with their index rows from the engine's own definition (storage.search_tables.index_rows). Each
case takes part at two of ~45 counters, so the clerk timed (陈静, counter pd-zhengwu) may read
about one case in twenty. Then, per kind of query (case number, 3- and 2-character names, a
company-name substring, ID number whole and last digits, phone whole, first and last digits, a
miss, and a deliberately broad three-digit phone prefix), values drawn from cases the clerk may
read are timed two ways: the whole API request in-process (routing, bearer token, candidate ids →
readable cases → ranked page → JSON) and the index query alone (engine.search.candidates).
Prints median and p95 per kind with the load average, writes bench/results/search_<dialect>.json.

Usage: python bench/bench_search.py [--cases N] [--url postgresql+psycopg://...] [--runs R] [--reuse]
(default 1,000,000 cases on a temporary SQLite file; a PostgreSQL database is emptied first).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import ROOT
from engine import catalog
from engine.actors import authenticate
from engine.demo import seed
from engine.search import candidates, normalise
from storage import migrate
from storage.db import make_engine, session_scope
from storage.search_tables import index_rows

CLERK, CLERK_COUNTER = "陈静", "pd-zhengwu"
SYNTHETIC_COUNTERS = 40
CHUNK = 20_000
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
            "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔")
DOUBLE_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫")
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建国红林云飞海波宁斌浩凯文晨欣怡子涵宇轩梓"
PLACES = ("黄浦", "徐汇", "长宁", "静安", "普陀", "虹口", "杨浦",
          "闵行", "宝山", "嘉定", "浦东", "金山", "松江", "青浦")
TRADES = ("餐饮店", "便利店", "理发店", "美容院", "宾馆", "浴室",
          "游泳馆", "茶馆", "面包房", "小吃店", "健身房", "网吧")
WORDS = "鑫源福兴隆盛泰丰恒达顺安康华美佳乐和祥瑞宏金"


def _name(rng: random.Random) -> tuple[str, str]:
    """(kind, name): 85 % persons (common and double surnames), 15 % shops and companies."""
    if rng.random() < 0.15:
        return "company", (f"上海{rng.choice(PLACES)}区" + "".join(rng.choice(WORDS) for _ in range(2))
                           + rng.choice(TRADES))
    surname = rng.choice(DOUBLE_SURNAMES) if rng.random() < 0.03 else rng.choice(SURNAMES)
    return "person", surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _applicant(rng: random.Random) -> dict[str, str]:
    kind, name = _name(rng)
    if kind == "company":
        id_number = "91310" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(13))
    else:
        id_number = f"310{rng.randrange(10**14):014d}" + rng.choice("0123456789X")
    phone = (f"021-{rng.randrange(10**8):08d}" if rng.random() < 0.1
             else f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}")
    return {"name": name, "kind": kind, "id_number": id_number, "phone": phone}


def _prepare(url: str) -> sa.Engine:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate.upgrade(engine)
    return engine


def _directory(engine: sa.Engine, tokens_file: Path) -> tuple[list[dict[str, str]], list[str], list[dict[str, Any]]]:
    """The demo seed, synthetic counters; (tokens, every counter id, items with a final state)."""
    with session_scope(engine) as s:
        tokens = seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml", tokens_file, 30)
    with engine.begin() as conn:
        region = conn.execute(sa.text("SELECT region_code FROM counters WHERE id = :c"), {"c": CLERK_COUNTER}).scalar()
        conn.execute(sa.text("INSERT INTO counters (id, name, unit, region_code) VALUES (:id, :name, '合成单位', :r)"),
                     [{"id": f"syn-{k}", "name": f"合成第{k}窗口", "r": region} for k in range(SYNTHETIC_COUNTERS)])
        counters = list(conn.execute(sa.text("SELECT id FROM counters ORDER BY id")).scalars())
    items = []
    with session_scope(engine) as s:
        for it in catalog.list_items(s):
            row = catalog.latest_version(s, it["code"])
            compiled = catalog.compiled(s, row.id)
            final = next(st.id for st in compiled.definition.states if st.final)
            items.append({"code": compiled.definition.code, "vid": row.id, "initial": compiled.initial,
                          "final": final})
    return tokens, counters, items


def _cases(n: int, counters: list[str], items: list[dict[str, Any]],
           rng: random.Random) -> Iterator[list[dict[str, Any]]]:
    """Chunks of case rows: one in ten open, the rest finished; two counters taking part."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    chunk = []
    for i in range(1, n + 1):
        it = items[i % len(items)]
        ic, cc = rng.choice(counters), rng.choice(counters)
        created = start + timedelta(seconds=i * 60)
        open_ = i % 10 == 0
        chunk.append({
            "id": i, "number": f"310000{created:%Y%m%d}{i:07d}", "item_version_id": it["vid"], "item_code": it["code"],
            "mode": "窗口办理", "state": it["initial"] if open_ else it["final"], "status_code": 3 if open_ else 11,
            "intake_counter_id": ic, "competent_counter_id": cc, "parties": {"intake": ic, "competent": cc},
            "assignees": {}, "applicant": _applicant(rng), "query_code_hash": "0" * 64,
            "created_at": created, "updated_at": created, "finished_at": None if open_ else created + timedelta(days=9),
            "version": 5, "deadline_provisional": False, "extended_days": 0})
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


CASE_COLUMNS = ("id", "number", "item_version_id", "item_code", "mode", "state", "status_code", "intake_counter_id",
                "competent_counter_id", "parties", "assignees", "applicant", "query_code_hash", "created_at",
                "updated_at", "finished_at", "version", "deadline_provisional", "extended_days")


def _value(v: Any, dialect: str) -> Any:
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, datetime):
        return v.isoformat() if dialect == "postgresql" else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def _load(engine: sa.Engine, chunks: Iterator[list[dict[str, Any]]], sample: Callable[[dict[str, Any]], None],
          log: Callable[[str], None]) -> None:
    dialect = engine.dialect.name
    engine.dispose()  # the load's connection alone: SQLite may leave WAL mode only so
    raw = engine.raw_connection()
    cur = raw.cursor()
    t0 = time.perf_counter()
    if dialect == "sqlite":
        raw.driver_connection.commit()
        # The app checkpoints its WAL from a thread of its own (storage.db); a load without it
        # writes a plain rollback journal instead, and goes back to WAL after.
        for pragma in ("journal_mode=DELETE", "foreign_keys=OFF", "synchronous=OFF", "cache_size=-1000000"):
            cur.execute(f"PRAGMA {pragma}")
        # Keys into a plain table first, then into the index table in key order (a sorted build).
        cur.execute("CREATE TEMP TABLE keys_load (key TEXT, case_id INTEGER)")
        marks = ", ".join("?" for _ in CASE_COLUMNS)
        case_sql = f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({marks})"
        for chunk in chunks:
            cur.executemany(case_sql, [tuple(_value(c[k], dialect) for k in CASE_COLUMNS) for c in chunk])
            search, keys, counters = _index(chunk, sample)
            cur.executemany("INSERT INTO case_search (case_id, name) VALUES (?, ?)", search)
            cur.executemany("INSERT INTO keys_load VALUES (?, ?)", keys)
            cur.executemany("INSERT INTO case_search_counters VALUES (?, ?)", counters)
            raw.driver_connection.commit()
        log(f"cases, names, counters: {time.perf_counter() - t0:.0f} s")
        cur.execute("INSERT INTO case_search_keys SELECT key, case_id FROM keys_load ORDER BY key, case_id")
        cur.execute("DROP TABLE keys_load")
        raw.driver_connection.commit()
        cur.execute("ANALYZE")
        raw.driver_connection.commit()
        cur.execute("PRAGMA journal_mode=WAL")
    else:
        # Constraints and the trigram index are dropped for the load and made again after it, as the
        # migration defines them: a sorted build instead of a million random inserts.
        cur.execute("SET session_replication_role = replica")
        cur.execute("ALTER TABLE case_search_keys DROP CONSTRAINT case_search_keys_pkey")
        cur.execute("DROP INDEX ix_case_search_trgm")
        for chunk in chunks:
            with cur.copy(f"COPY cases ({', '.join(CASE_COLUMNS)}) FROM STDIN") as cp:
                for c in chunk:
                    cp.write_row([_value(c[k], dialect) for k in CASE_COLUMNS])
            search, keys, counters = _index(chunk, sample)
            for table, rows in (("case_search (case_id, name)", search), ("case_search_keys (key, case_id)", keys),
                                ("case_search_counters (case_id, counter_id)", counters)):
                with cur.copy(f"COPY {table} FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)
            raw.commit()
        log(f"cases and index rows: {time.perf_counter() - t0:.0f} s")
        cur.execute("ALTER TABLE case_search_keys ADD PRIMARY KEY (key, case_id)")
        cur.execute("CREATE INDEX ix_case_search_trgm ON case_search USING gin (name gin_trgm_ops)")
        cur.execute("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
        raw.commit()
        raw.driver_connection.autocommit = True
        cur.execute("VACUUM ANALYZE")
    log(f"indexed: {time.perf_counter() - t0:.0f} s")
    raw.close()


def _index(chunk: list[dict[str, Any]], sample: Callable[[dict[str, Any]], None]) -> tuple[list, list, list]:
    search, keys, counters = [], [], []
    for c in chunk:
        s, k, p = index_rows(c["id"], c["number"], c["applicant"], c["parties"])
        search.append((s["case_id"], s["name"]))
        keys += [(r["key"], r["case_id"]) for r in k]
        counters += [(r["case_id"], r["counter_id"]) for r in p]
        sample(c)
    return search, keys, counters


def _queries(seen: list[dict[str, Any]], rng: random.Random, runs: int) -> dict[str, list[str]]:
    """Per kind, ``runs`` query values drawn from cases the clerk may read."""
    people = [c["applicant"] for c in seen if c["applicant"]["kind"] == "person"]
    firms = [c["applicant"] for c in seen if c["applicant"]["kind"] == "company"]
    mobiles = [a["phone"] for a in people + firms if not a["phone"].startswith("0")]

    def pick(values: list[Any], f: Callable[[Any], str]) -> list[str]:
        return [f(rng.choice(values)) for _ in range(runs)]

    three = [a["name"] for a in people if len(a["name"]) == 3]
    return {
        "number": pick(seen, lambda c: c["number"]),
        "name_3": pick(three, lambda n: n),
        "name_2": pick(three, lambda n: n[:2]),            # surname and first given character: the broad one
        "company_part": pick(firms, lambda a: a["name"][5:9]),
        "id_exact": pick(people, lambda a: a["id_number"]),
        "id_last_4": pick(people, lambda a: a["id_number"][-4:]),
        "id_last_6": pick(firms, lambda a: a["id_number"][-6:].lower()),
        "phone_full": pick(mobiles, lambda p: p),
        "phone_first_7": pick(mobiles, lambda p: p[:7]),
        "phone_last_4": pick(mobiles, lambda p: p[-4:]),
        "miss": ["没有这个人"] * runs,
        "broad_phone_first_3": pick(mobiles, lambda p: p[:3]),
    }


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2), "n": len(samples)}


def records(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The run as the benchmarks' records (bench/README.md): per kind of query the whole API
    request against its index query alone (the limit: what the database must do), both measured
    in this run; the run's size and load as records of their own."""
    setup = out["dialect"]

    def rec(metric: str, value: float, unit: str, better: str | None,
            baseline: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"metric": metric, "value": value, "unit": unit, "better": better, "baseline": baseline,
                "setup": setup}

    rows = [rec("search.cases", out["cases"], "cases", None), rec("search.runs_per_kind", out["runs"], "queries", None),
            rec("search.loadavg_at_start", out["loadavg_at_load"][0], "load", None)]
    for kind, k in out["kinds"].items():
        limit = {"name": "index query alone (engine.search.candidates)", "value": k["index"]["median_ms"]}
        rows += [rec(f"search.{kind}.api_ms_median", k["api"]["median_ms"], "ms", "lower", limit),
                 rec(f"search.{kind}.api_ms_p95", k["api"]["p95_ms"], "ms", "lower"),
                 rec(f"search.{kind}.index_ms_median", k["index"]["median_ms"], "ms", "lower"),
                 rec(f"search.{kind}.hits_median", k["hits_median"], "cases", None)]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--url", default=None, help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--reuse", action="store_true", help="time the cases a previous run left in --url again")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = args.url or f"sqlite:///{tmp}/bench.db"

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}   (load {os.getloadavg()[0]:.2f})", flush=True)

    logging.getLogger("tongban.access").setLevel(logging.WARNING)  # one line per timed request otherwise
    rng = random.Random(16)
    seen: list[dict[str, Any]] = []

    def sample(c: dict[str, Any]) -> None:
        if CLERK_COUNTER in c["parties"].values() and rng.random() < 0.05:
            seen.append(c)

    load_before = os.getloadavg()
    if args.reuse:
        engine = make_engine(url)
        with session_scope(engine) as s:  # the seed again: it issues this run's tokens
            tokens = seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml", tmp / "tokens.json", 30)
        with engine.connect() as conn:
            counters = list(conn.execute(sa.text("SELECT id FROM counters")).scalars())
            args.cases = conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
            for cid, number, applicant in conn.execute(sa.text(
                    "SELECT c.id, c.number, c.applicant FROM cases c JOIN case_search_counters k ON k.case_id = c.id "
                    "WHERE k.counter_id = :c AND c.id % 20 = 0"), {"c": CLERK_COUNTER}):
                seen.append({"id": cid, "number": number,
                             "applicant": json.loads(applicant) if isinstance(applicant, str) else applicant})
    else:
        engine = _prepare(url)
        tokens, counters, items = _directory(engine, tmp / "tokens.json")
        _load(engine, _cases(args.cases, counters, items, rng), sample, log)
    token = next(t["token"] for t in tokens if t["name"] == CLERK)
    queries = _queries(seen, random.Random(7), args.runs)
    client = TestClient(create_app(engine))
    client.__enter__()
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {
        "bench": "search", "dialect": engine.dialect.name, "cases": args.cases, "runs": args.runs,
        "clerk_counter": CLERK_COUNTER, "counters": len(counters), "python": platform.python_version(),
        "cpus": os.cpu_count(), "loadavg_at_load": [round(x, 2) for x in load_before], "kinds": {}}
    print(f"{'kind':22} {'api median':>10} {'p95':>8} {'index median':>13} {'p95':>8}  hits (median)")
    with session_scope(engine) as s:
        actor = authenticate(s, token)
    for kind, values in queries.items():
        for q in values[:3]:  # warm the caches the way a working server has them
            client.get("/api/v1/cases", params={"q": q}, headers=headers)
        api, index, hits = [], [], []
        load = os.getloadavg()[0]
        for q in values:
            t = time.perf_counter()
            r = client.get("/api/v1/cases", params={"q": q}, headers=headers)
            api.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
            hits.append(len(r.json()["items"]))
            with session_scope(engine) as s:
                t = time.perf_counter()
                candidates(s, actor, normalise(q))
                index.append((time.perf_counter() - t) * 1000)
        out["kinds"][kind] = {"api": _stats(api), "index": _stats(index), "hits_median": statistics.median(hits),
                              "example": values[0], "loadavg_1m": round(load, 2)}
        a, i = out["kinds"][kind]["api"], out["kinds"][kind]["index"]
        print(f"{kind:22} {a['median_ms']:10.1f} {a['p95_ms']:8.1f} {i['median_ms']:13.1f} {i['p95_ms']:8.1f}"
              f"  {statistics.median(hits):.0f}   (load {load:.2f})", flush=True)
    client.__exit__(None, None, None)
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"search_{engine.dialect.name}.json").write_text(
        json.dumps(records(out), indent=2, ensure_ascii=False) + "\n")
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)  # the temporary SQLite file (gigabytes at full size)


if __name__ == "__main__":
    main()
