"""Search: the physical limit of the index query (FTS5 trigram on SQLite, pg_trgm on PostgreSQL).

Bulk-loads N rows straight into case_search of a freshly migrated database and times
engine.search.candidate_ids for names, credit-code tails and phones; prints medians, writes JSON.
Usage: python bench/bench_search.py [N] [postgresql+psycopg://...]   (default N = 1,000,000, SQLite)
Not yet measured: the whole GET /api/v1/cases?q= path (it needs N real case rows, not just the index).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

from engine.search import candidate_ids, normalise
from storage import migrate
from storage.db import make_engine
from storage.search_tables import terms_of

SURNAMES, GIVEN = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗欧阳", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def rows(n: int, rng: random.Random):  # noqa: ANN201
    for i in range(1, n + 1):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
        yield {"case_id": i, "terms": terms_of(f"TB{i:012d}", {
            "name": name, "id_number": f"{rng.randrange(10**17):018d}", "phone": f"13{rng.randrange(10**9):09d}"})}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(url)
    migrate.upgrade(engine)
    rng = random.Random(16)
    # Only the index is loaded: its foreign key to cases is switched off for this load.
    raw = engine.raw_connection()
    cur = raw.cursor()
    sql = "INSERT INTO case_search (case_id, terms) VALUES (%s)" % (
        "?, ?" if engine.dialect.name == "sqlite" else "%s, %s")
    if engine.dialect.name == "sqlite":
        raw.driver_connection.commit()
        cur.execute("PRAGMA foreign_keys=OFF")
    else:
        cur.execute("SET session_replication_role = replica")
    batch: list[tuple[int, str]] = []
    for r in rows(n, rng):
        batch.append((r["case_id"], r["terms"]))
        if len(batch) == 10_000:
            cur.executemany(sql, batch)
            batch = []
    if batch:
        cur.executemany(sql, batch)
    raw.commit()
    raw.close()
    queries = {"name3": "欧阳明", "name2": "王芳", "id_tail": "1234", "phone": "1380000"}
    out = {"n": n, "dialect": engine.dialect.name, "median_ms": {}}
    with Session(engine) as s:
        for label, q in queries.items():
            times = []
            for _ in range(15):
                t = time.perf_counter()
                candidate_ids(s, normalise(q))
                times.append((time.perf_counter() - t) * 1000)
            out["median_ms"][label] = round(statistics.median(times), 2)
            print(f"{label:8} {q:10} median {out['median_ms'][label]:8.2f} ms")
    Path("bench/results").mkdir(exist_ok=True)
    Path(f"bench/results/search_{engine.dialect.name}.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
