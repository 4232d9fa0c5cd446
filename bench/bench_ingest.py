"""Ingest benchmark: 1 MB scans uploaded through the clerk API, beside a raw ``put_object``.

For each store (``s3``: the MinIO SDK against a moto server process; ``local``: the folder
store) and each client concurrency, in the same run and with the same bytes:

* raw: the object store's own put of each scan (S3: ``Minio.put_object``; local: the folder
  store's put), from this process, measured before and after the API run (mean of the two);
* api: ``POST /api/v1/cases/{n}/materials/{m}/pages`` (raw body) against
  ``tongban serve`` (uvicorn subprocess, SQLite): authentication, sha256 (as the body
  arrives), full validation (JPEG decoded at 1/8 scale, while the object is written), object
  write, and one transaction (page row, checklist, version, history). Thumbnails are made in
  the server's background thread; ``drained`` counts until the last thumbnail is recorded.

Two kinds of 1 MB scan: ``jpeg`` (validation decodes every page: the dominant cost) and
``pdf`` (the same page wrapped in a PDF: validation parses the PDF structure only), so the
cost of the pipeline itself (hashing, object write, transaction) shows apart from decoding.

Beside them, for S3, a ceiling: a bare ASGI server under uvicorn (no framework, no checks, no
database) that receives each body and hands it to ``Minio.put_object``: what any HTTP API in
front of the store could reach on this machine, measured against the same raw put.

Writes ``bench/results/ingest.json`` in the shared benchmark shape and prints a table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from minio import Minio
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import get_settings  # noqa: E402
from engine.scan_validation import inspect  # noqa: E402
from storage.object_local import LocalStore  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ingest.json"
PAGES_PER_CASE = 25


def scan(seed: int, target: int = 1_000_000) -> bytes:
    """A grey A4 page at 300 dpi with text-like strokes and sensor noise, about ``target`` bytes."""
    rnd = random.Random(seed)
    w, h = 2480, 3508
    im = Image.new("L", (w, h), 245)
    d = ImageDraw.Draw(im)
    for y in range(200, h - 200, 48):
        x = 200
        while x < w - 300:
            length = rnd.randint(20, 140)
            d.rectangle([x, y, x + length, y + 22], fill=rnd.randint(10, 60))
            x += length + rnd.randint(12, 30)
    noisy = Image.blend(im, Image.effect_noise((w, h), 30), 0.12)
    for quality in range(85, 20, -5):
        out = io.BytesIO()
        noisy.save(out, "JPEG", quality=quality)
        if len(out.getvalue()) <= target * 1.1:
            break
    return out.getvalue()


def as_pdf(jpeg: bytes) -> bytes:
    """The same page as a one-page PDF (the JPEG embedded as is): validation only parses it."""
    out = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as im:
        im.save(out, "PDF", resolution=300)
    return out.getvalue()


def variant(data: bytes, i: int) -> bytes:
    """Page ``i``: the base scan made unique (every page of a real case differs, and two clients
    writing one key at the same moment is not what we measure). JPEG: a comment segment after
    the start marker; PDF: a comment line after the end marker."""
    if data.startswith(b"\xff\xd8"):
        return data[:2] + b"\xff\xfe\x00\x0a" + i.to_bytes(8, "big") + data[2:]
    return data + f"% page {i}\n".encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 180) -> None:  # a loaded machine starts the server slowly
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.2)


@contextmanager
def process(cmd: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(ready_url)
            yield
        finally:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def run_parallel(n: int, concurrency: int, work: Callable[[int, Any], None],
                 make_ctx: Callable[[], Any]) -> float:
    """Run ``work(i, ctx)`` for i in range(n) on ``concurrency`` threads; return the seconds."""
    counter = iter(range(n))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def loop() -> None:
        ctx = make_ctx()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                work(i, ctx)
            except BaseException as exc:  # noqa: BLE001  (reported after the run)
                errors.append(exc)
                return

    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def decode_only(data: bytes, media_type: str) -> None:
    """What the server's validation does with a page's bytes and nothing else: the same check
    (``engine.scan_validation.inspect``: decode at reduced scale, or parse the PDF, and the
    thumbnail from those pixels), in a worker process as the server's decode pool runs it."""
    s = get_settings()
    inspect(io.BytesIO(data), media_type, "file", s.decode_memory_bytes, s.thumbnail_px)


def ceiling_runs(n: int, conc: int, scans: list[bytes], media_type: str,
                 raw_put: Callable[[int, Any], None], pool: Any) -> tuple[float, float]:
    """(decode-only seconds, overlapped seconds) for ``n`` pages on ``conc`` client threads.

    The ceiling of a validated upload on these cores: each page decoded (in a worker process,
    as many as the server's decode pool) while the same thread puts it raw into the store, both
    at once as the server overlaps them; a page counts when both are done."""
    def decode(i: int, _: Any) -> None:
        pool.submit(decode_only, variant(scans[i % len(scans)], i), media_type).result()

    def overlapped(i: int, ctx: Any) -> None:
        pending = pool.submit(decode_only, variant(scans[i % len(scans)], i), media_type)
        raw_put(i, ctx)
        pending.result()

    decode_s = run_parallel(n, conc, decode, lambda: None)
    both_s = run_parallel(n, conc, overlapped, lambda scans=scans: scans)
    return decode_s, both_s


def proxy_server(port: int, moto: str) -> None:
    """The ceiling: receive the body, ``put_object`` it, answer 201. Nothing else."""
    import anyio.to_thread
    import uvicorn

    client = Minio(endpoint=moto, access_key="bench", secret_key="bench", secure=False, region="us-east-1")
    if not client.bucket_exists(bucket_name="proxy-ceiling"):
        client.make_bucket(bucket_name="proxy-ceiling")
    count = iter(range(1 << 62))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if body:
            await anyio.to_thread.run_sync(lambda: client.put_object(
                bucket_name="proxy-ceiling", object_name=f"p{next(count)}", data=io.BytesIO(body),
                length=len(body), content_type="image/jpeg"))
        await send({"type": "http.response.start", "status": 201 if body else 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def bench_ceiling(scans: list[bytes], n: int, concurrencies: list[int], tmp: Path,
                  moto: str) -> list[dict[str, Any]]:
    port = free_port()
    raw_client = Minio(endpoint=moto, access_key="bench", secret_key="bench", secure=False, region="us-east-1")
    if not raw_client.bucket_exists(bucket_name="raw-baseline"):
        raw_client.make_bucket(bucket_name="raw-baseline")

    def raw_put(i: int, _: Any) -> None:
        data = variant(scans[i % len(scans)], i)
        raw_client.put_object(bucket_name="raw-baseline", object_name=f"scan-{i}", data=io.BytesIO(data),
                              length=len(data), content_type="image/jpeg")

    def proxy_put(i: int, client: httpx.Client) -> None:
        r = client.post("/", content=variant(scans[i % len(scans)], i), headers={"Content-Type": "image/jpeg"})
        if r.status_code != 201:
            raise RuntimeError(r.text)

    out: list[dict[str, Any]] = []
    cmd = [sys.executable, __file__, "--proxy-server", str(port), "--moto", moto]
    with process(cmd, dict(os.environ), f"http://127.0.0.1:{port}/", tmp / "proxy.log"):
        for conc in concurrencies:
            raw1 = run_parallel(n, conc, raw_put, lambda: None)
            api = run_parallel(n, conc, proxy_put, lambda: httpx.Client(base_url=f"http://127.0.0.1:{port}"))
            raw2 = run_parallel(n, conc, raw_put, lambda: None)
            raw = (raw1 + raw2) / 2
            label = f"bare proxy, s3, {conc} client{'s' if conc > 1 else ''}"
            out.append({"metric": f"ingest share of raw rate ({label})", "value": round(100 * raw / api, 1),
                        "unit": "%", "better": "higher", "baseline": {"name": "target", "value": 80.0},
                        "setup": "s3"})
            print(f"{label:<24} api {n / api:7.1f} pages/s | raw {n / raw:7.1f} pages/s | "
                  f"{100 * raw / api:5.1f}% of raw (the ceiling for any API here)", flush=True)
    return out


def bench_setup(setup: str, kinds: dict[str, list[bytes]], n: int, concurrencies: list[int],
                tmp: Path, moto: str | None) -> list[dict[str, Any]]:
    data_dir = tmp / setup
    data_dir.mkdir()
    db = data_dir / "tongban.db"
    port = free_port()
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{db}", "TONGBAN_DATA_DIR": str(data_dir),
           "TONGBAN_OBJECT_STORE": setup, "TONGBAN_OBJECT_DIR": str(data_dir / "objects"),
           "TONGBAN_S3_ENDPOINT": moto or "", "TONGBAN_S3_ACCESS_KEY": "bench",
           "TONGBAN_S3_SECRET_KEY": "bench", "TONGBAN_EMBEDDED_FLOWS": "false"}
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", "1", "--no-flows", "--standalone"]
    if setup == "s3":
        raw_client = Minio(endpoint=moto or "", access_key="bench", secret_key="bench", secure=False,
                           region="us-east-1")
        if not raw_client.bucket_exists(bucket_name="raw-baseline"):
            raw_client.make_bucket(bucket_name="raw-baseline")

        def raw_put(i: int, scans: list[bytes]) -> None:
            data = variant(scans[i % len(scans)], i)
            raw_client.put_object(bucket_name="raw-baseline", object_name=f"scan-{i}",
                                  data=io.BytesIO(data), length=len(data), content_type="image/jpeg")
    else:
        raw_store = LocalStore(data_dir / "raw-objects")
        raw_store.ensure_bucket("raw-baseline")

        def raw_put(i: int, scans: list[bytes]) -> None:
            raw_store.put("raw-baseline", io.BytesIO(variant(scans[i % len(scans)], i)), "image/jpeg",
                          max_bytes=50 << 20)

    out: list[dict[str, Any]] = []
    pool = ProcessPoolExecutor(max(1, get_settings().decode_workers))  # the server's decode pool's size
    with pool, process(cmd, env, f"{base}/healthz", data_dir / "serve.log"):
        tokens = {t["name"]: t["token"] for t in json.loads((data_dir / "demo-tokens.json").read_text())}
        auth = {"Authorization": f"Bearer {tokens['王芳']}"}
        materials = ["application", "power_of_attorney", "appointment_docs", "license"]
        with httpx.Client(base_url=base, headers=auth, timeout=60) as c:
            for kind, conc in [(k, c) for k in kinds for c in concurrencies]:
                scans = kinds[kind]
                media_type = "application/pdf" if kind == "pdf" else "image/jpeg"
                mb = sum(len(scans[i % len(scans)]) for i in range(n)) / 1e6
                run_parallel(len(scans), 1, raw_put, lambda scans=scans: scans)  # warm up
                cases = []
                for _ in range(-(-n // PAGES_PER_CASE)):
                    r = c.post("/api/v1/cases", json={
                        "item_code": "FGSFZRBG", "competent_region": "370211",
                        "applicant": {"name": "基准测试", "kind": "company"}, "materials": {},
                        "situation": {"agent": "self"}})
                    r.raise_for_status()
                    cases.append(r.json()["number"])

                def api_put(i: int, client: httpx.Client, cases: list[str] = cases,
                            scans: list[bytes] = scans, media_type: str = media_type) -> None:
                    number = cases[i // PAGES_PER_CASE]
                    r = client.post(f"/api/v1/cases/{number}/materials/{materials[i % 4]}/pages",
                                    content=variant(scans[i % len(scans)], i),
                                    headers={"Content-Type": media_type, "X-File-Name": f"p{i}"})
                    if r.status_code != 201:
                        raise RuntimeError(r.text)

                def make_client() -> httpx.Client:
                    return httpx.Client(base_url=base, headers=auth, timeout=60)

                with sqlite3.connect(db) as con:
                    before = con.execute("SELECT count(*) FROM case_pages").fetchone()[0]
                raw1 = run_parallel(n, conc, raw_put, lambda scans=scans: scans)
                start = time.perf_counter()
                api = run_parallel(n, conc, api_put, make_client)
                with sqlite3.connect(db) as con:  # until every thumbnail is recorded
                    while con.execute("SELECT count(*) FROM case_pages WHERE thumbnail_key IS NULL "
                                      "AND media_type LIKE 'image/%' AND id > ?", (before,)).fetchone()[0]:
                        time.sleep(0.05)
                drained = time.perf_counter() - start
                raw2 = run_parallel(n, conc, raw_put, lambda scans=scans: scans)
                raw = (raw1 + raw2) / 2
                decode_s, ceiling = ceiling_runs(n, conc, scans, media_type, raw_put, pool)
                label = f"{kind}, {setup}, {conc} client{'s' if conc > 1 else ''}"
                raw_name = "Minio.put_object" if setup == "s3" else "LocalStore.put"
                out += [
                    {"metric": f"ingest MB/s ({label})", "value": round(mb / api, 1), "unit": "MB/s",
                     "better": "higher", "baseline": {"name": f"raw {raw_name}", "value": round(mb / raw, 1)},
                     "setup": f"sqlite+{setup}"},
                    {"metric": f"ingest pages/s ({label})", "value": round(n / api, 1), "unit": "pages/s",
                     "better": "higher", "baseline": {"name": f"raw {raw_name}", "value": round(n / raw, 1)},
                     "setup": f"sqlite+{setup}"},
                    {"metric": f"ingest share of raw rate ({label})", "value": round(100 * raw / api, 1),
                     "unit": "%", "better": "higher", "baseline": {"name": "target", "value": 80.0},
                     "setup": f"sqlite+{setup}"},
                    {"metric": f"ingest pages/s incl. thumbnails drained ({label})",
                     "value": round(n / drained, 1), "unit": "pages/s", "better": "higher",
                     "baseline": None, "setup": f"sqlite+{setup}"},
                    {"metric": f"decode-only pages/s ({label})", "value": round(n / decode_s, 1),
                     "unit": "pages/s", "better": "higher", "baseline": None, "setup": f"sqlite+{setup}"},
                    {"metric": f"ceiling pages/s, raw put and decode overlapped ({label})",
                     "value": round(n / ceiling, 1), "unit": "pages/s", "better": "higher",
                     "baseline": {"name": f"raw {raw_name}", "value": round(n / raw, 1)}, "setup": f"sqlite+{setup}"},
                    {"metric": f"ingest share of its ceiling ({label})", "value": round(ceiling / api, 3),
                     "unit": "ratio", "better": "higher", "baseline": {"name": "target", "value": 0.70},
                     "setup": f"sqlite+{setup}"},
                ]
                print(f"{label:<24} api {n / api:7.1f} pages/s {mb / api:7.1f} MB/s | raw {n / raw:7.1f} "
                      f"pages/s {mb / raw:7.1f} MB/s | {100 * raw / api:5.1f}% of raw | decode-only "
                      f"{n / decode_s:6.1f} | ceiling {n / ceiling:6.1f} pages/s: {ceiling / api:.2f} of it | "
                      f"drained {n / drained:6.1f} pages/s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run, well under a minute")
    ap.add_argument("--pages", type=int, default=None)
    ap.add_argument("--setups", default="s3,local")
    ap.add_argument("--proxy-server", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--moto", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.proxy_server:
        proxy_server(args.proxy_server, args.moto)
        return
    n = args.pages or (40 if args.quick else 300)
    concurrencies = [1, 4] if not args.quick else [1, 2]
    jpegs = [scan(i) for i in range(4 if args.quick else 8)]
    kinds = {"jpeg": jpegs, "pdf": [as_pdf(j) for j in jpegs]}
    for kind, scans in kinds.items():
        print(f"{kind}: {len(scans)} distinct scans, {sum(map(len, scans)) / len(scans) / 1e6:.2f} MB "
              f"each on average; {n} uploads per run", flush=True)
    records: list[dict[str, Any]] = []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as t:
        tmp = Path(t)
        moto_port = free_port()
        moto = f"127.0.0.1:{moto_port}"
        with process([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                     dict(os.environ), f"http://{moto}/", tmp / "moto.log"):
            for setup in args.setups.split(","):
                records += bench_setup(setup, kinds, n, concurrencies, tmp, moto)
            if "s3" in args.setups.split(","):
                records += bench_ceiling(jpegs, n, concurrencies, tmp, moto)
    meta = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "python": platform.python_version(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "quick": args.quick}
    meta["load_average"] = {"start": round(load[0], 2), "end": round(os.getloadavg()[0], 2)}
    for r in records:
        r["machine"] = meta
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
