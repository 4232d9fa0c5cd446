"""Guide search quality: top-1 and top-3 accuracy of ``engine.guide_search`` on a query set of real
phrasings (bench/guide_queries.yaml: the set written with the aliases, the set written apart from
them, and both), over the catalog and guides in this repository. No database: the index is built
from the same files the server publishes. Prints each miss, then the totals; writes
bench/results/guide_search.json.

    .venv/bin/python bench/bench_guide_search.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import get_settings  # noqa: E402
from engine import extensions, guide  # noqa: E402
from engine.catalog import read_catalog  # noqa: E402
from engine.guide_search import Index  # noqa: E402


def score(index: Index, queries: dict[str, list[str]]) -> dict[str, float]:
    total = top1 = top3 = 0
    started = time.perf_counter()
    for code, phrasings in queries.items():
        for q in phrasings:
            ranked = [c for c, _ in index.search(q, 3)]
            total += 1
            top1 += bool(ranked) and ranked[0] == code
            top3 += code in ranked
            if not ranked or ranked[0] != code:
                print(f"miss  {q!r}: want {code}, got {ranked}")
    elapsed = time.perf_counter() - started
    return {"queries": total, "top1": round(top1 / total, 3), "top3": round(top3 / total, 3),
            "ms_per_query": round(1000 * elapsed / total, 3)}


def main() -> int:
    extensions.load()
    defs = {i.definition.code: i.definition for i in read_catalog(get_settings().catalog_dir)}
    started = time.perf_counter()
    index = Index(guide.documents(defs, guide.guide_texts()))
    built = time.perf_counter() - started
    sets = yaml.safe_load((ROOT / "bench" / "guide_queries.yaml").read_text(encoding="utf-8"))
    result: dict[str, object] = {"items": len(defs), "index_build_s": round(built, 3)}
    every: dict[str, list[str]] = {}
    for name, queries in sets.items():
        print(f"-- {name}")
        result[name] = score(index, queries)
        for code, phrasings in queries.items():
            every.setdefault(code, []).extend(phrasings)
    print("-- all")
    result["all"] = score(index, every)
    print(json.dumps(result, ensure_ascii=False))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "guide_search.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
