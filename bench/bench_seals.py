"""Seals benchmark: what signing and verifying one notice costs, against the bare cryptography.

Signs a one-page notice (CJK text, the seal image) with a unit's seal through
``engine.seals.sign_pdf`` — key unsealed from the database, pyHanko in a worker process of
``engine.offload.COMPUTE`` — and verifies it with ``engine.seals.verify_pdf`` (pyHanko's
validator and the unsigned-bytes check). The baseline is the physical limit of the same work:
SHA-256 over the file plus one ECDSA P-256 signature (or verification) with ``cryptography`` in
this process. p50 and p95 over N rounds (``--quick``: 20, full: 200).

Writes ``bench/results/seals.json`` in the shared benchmark shape.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.settings import ROOT  # noqa: E402
from engine import directory, seals  # noqa: E402
from engine.fonts import cjk_font  # noqa: E402
from engine.seal_image import draw_seal  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "seals.json"
UNIT = "qdxh-shenpi"


def notice(path: Path) -> bytes:
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont(cjk_font(), 20)
    c.drawCentredString(A4[0] / 2, A4[1] - 100, "受理通知书")
    c.setFont(cjk_font(), 12)
    line = "你单位提交的分公司负责人变更登记申请材料齐全, 符合法定形式, 决定予以受理。"
    for i in range(30):
        c.drawString(60, A4[1] - 150 - i * 18, f"第{i + 1}行: {line}")
    draw_seal(c, A4[0] - 150, 160, 120, "青岛西海岸新区行政审批服务局", "行政审批专用章")
    c.showPage()
    c.save()
    return path.read_bytes()


def timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 rounds instead of 200")
    args = ap.parse_args()
    rounds = 20 if args.quick else 200
    tmp = Path(tempfile.mkdtemp(prefix="tongban-bench-seals-"))
    os.environ.setdefault("TONGBAN_SEAL_KEY", "bench-seal-key")
    engine = make_engine(f"sqlite:///{tmp / 'seals.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        directory.load_alliance(s, ROOT / "catalog" / "alliance.yaml")
        seals.create(s, UNIT)
    pdf = notice(tmp / "notice.pdf")
    with session_scope(engine) as s:  # a first round starts the worker process (not timed)
        signed = seals.sign_pdf(s, UNIT, pdf, reason="受理通知书", location="青岛")
        assert seals.verify_pdf(signed, s).valid

    def sign() -> None:
        with session_scope(engine, readonly=True) as s:
            seals.sign_pdf(s, UNIT, pdf, reason="受理通知书", location="青岛")

    def verify() -> None:
        with session_scope(engine, readonly=True) as s:
            assert seals.verify_pdf(signed, s).valid

    key = ec.generate_private_key(ec.SECP256R1())
    raw_sig = key.sign(hashlib.sha256(signed).digest(), ec.ECDSA(hashes.SHA256()))

    def raw_sign() -> None:
        key.sign(hashlib.sha256(pdf).digest(), ec.ECDSA(hashes.SHA256()))

    def raw_verify() -> None:
        key.public_key().verify(raw_sig, hashlib.sha256(signed).digest(), ec.ECDSA(hashes.SHA256()))

    sign_ms, verify_ms = timed(sign, rounds), timed(verify, rounds)
    raw_sign_ms, raw_verify_ms = timed(raw_sign, rounds), timed(raw_verify, rounds)
    setup = (f"sqlite, {os.cpu_count()} cores, one-page notice {len(pdf) // 1024} KB "
             f"(signed {len(signed) // 1024} KB), ECDSA P-256, {rounds} rounds, load {os.getloadavg()[0]:.1f}")
    results = [
        {"metric": "seals.sign_ms_p50", "value": round(p(sign_ms, 50), 2), "unit": "ms", "better": "lower",
         "baseline": {"name": "sha256 + ECDSA sign in-process", "value": round(p(raw_sign_ms, 50), 3)},
         "setup": setup},
        {"metric": "seals.sign_ms_p95", "value": round(p(sign_ms, 95), 2), "unit": "ms", "better": "lower",
         "baseline": None, "setup": setup},
        {"metric": "seals.verify_ms_p50", "value": round(p(verify_ms, 50), 2), "unit": "ms", "better": "lower",
         "baseline": {"name": "sha256 + ECDSA verify in-process", "value": round(p(raw_verify_ms, 50), 3)},
         "setup": setup},
        {"metric": "seals.verify_ms_p95", "value": round(p(verify_ms, 95), 2), "unit": "ms", "better": "lower",
         "baseline": None, "setup": setup},
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for r in results:
        base = f"  (baseline {r['baseline']['name']}: {r['baseline']['value']} ms)" if r["baseline"] else ""
        print(f"{r['metric']:<22} {r['value']:>9} ms{base}")


if __name__ == "__main__":
    main()
