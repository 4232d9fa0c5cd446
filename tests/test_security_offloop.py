"""Hostile input that costs CPU or memory, against real server processes: big images, big item
definitions, regular expressions. Each is held off the event loop and within its budget.

- Six 462 KB PNGs of 10900×10900 RGBA (475 MB each to decode) at once: each refused from its
  header (problem details, nothing stored) while the server's peak RSS grows by a few MB; a
  normal scan is still accepted and thumbnailed.
- Eight 510 KB definitions published at once: parsed in worker processes with a time budget,
  while a clerk's queue GETs stay fast.
- ``matches`` rules run on RE2: ``(a|a)+$`` against 28 ``a`` and ``!`` takes microseconds; a
  backreference is refused at its line; an evaluation past its budget hands the case to a person.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ALL_GGCS, Demo, answers_for, free_port, run_jobs, wait_healthy
from PIL import Image
from typer.testing import CliRunner

from api.routes import documents
from cli.main import app as cli_app
from core.settings import ROOT, get_settings
from engine import autoreview, catalog
from engine.intake import create_case
from states.schema import ReviewRule
from storage.db import make_engine, session_scope
from storage.object_local import LocalStore

GGCS = (ROOT / "catalog" / "items" / "ggcs_weisheng_xuke.yaml").read_text(encoding="utf-8")
FGS_BUT_LICENSE = {m: "received" for m in ("application", "power_of_attorney", "appointment_docs")}
MB = 1024 * 1024


# -- a real server process -------------------------------------------------------------------

class Server:
    """``tongban serve`` on SQLite in ``tmp`` (demo seed), with extra ``TONGBAN_*`` settings."""

    def __init__(self, tmp: Path, *, flows: bool = False, **settings: str) -> None:
        self.port, self.tmp = free_port(), tmp
        self.env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp / 'server.db'}",
                    "TONGBAN_DATA_DIR": str(tmp), "TONGBAN_OBJECT_DIR": str(tmp / "objects"),
                    **{f"TONGBAN_{k.upper()}": v for k, v in settings.items()}}
        args = [sys.executable, "-m", "cli", "serve", "--port", str(self.port)]
        self.log = (tmp / "server.log").open("wb")
        alone = [] if flows else ["--no-flows", "--standalone"]  # one machine, nothing draining
        self.proc = subprocess.Popen([*args, *alone], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        if not wait_healthy(f"{self.base}/healthz", 90):
            self.stop()
            raise RuntimeError("server did not start: " + (tmp / "server.log").read_text(errors="replace"))
        self.tokens = {t["name"]: t["token"] for t in json.loads((tmp / "demo-tokens.json").read_text())}

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def status(self, pid: int | None = None) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) in bytes, of the server or of one of its processes."""
        out = {}
        for line in Path(f"/proc/{pid or self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
        return out

    def children(self) -> list[int]:
        return [int(p) for task in Path(f"/proc/{self.proc.pid}/task").iterdir()
                for p in (task / "children").read_text().split()]

    def wait_for_jobs(self, seconds: float = 180) -> None:
        """Until the server's drainer has no job left to run (reads the server's database)."""
        engine = make_engine(self.env["TONGBAN_DATABASE_URL"])
        deadline = time.monotonic() + seconds
        try:
            while True:
                with engine.connect() as conn:
                    left = conn.exec_driver_sql(
                        "SELECT count(*) FROM outbox WHERE status IN ('pending', 'running')").scalar_one()
                if not left:
                    return
                assert time.monotonic() < deadline, f"{left} jobs still to run"
                time.sleep(0.3)
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for the image and definition attacks (its peak RSS is measured from each
    attack's start): parsing gets 3 s, so the definitions' attack is cut short."""
    s = Server(tmp_path_factory.mktemp("server"), parse_seconds="3")
    yield s
    s.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Any:
    started: list[Server] = []

    def start(**settings: Any) -> Server:
        home = tmp_path / f"s{len(started)}"
        home.mkdir()
        started.append(Server(home, **settings))
        return started[-1]

    yield start
    for s in started:
        s.stop()


class Clerk(threading.Thread):
    """GETs the clerk's queue again and again, recording each answer's latency."""

    def __init__(self, server: Server, who: str = "王芳") -> None:
        super().__init__(daemon=True)
        self.server, self.who = server, who
        self.latencies: list[float] = []
        self.statuses: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.server.base, timeout=120) as c:
            while not self.stop.is_set():
                t = time.perf_counter()
                r = c.get("/api/v1/cases", headers=self.server.h(self.who))
                self.latencies.append(time.perf_counter() - t)
                self.statuses.add(r.status_code)
                time.sleep(0.02)

    def summary(self) -> tuple[float, float]:
        self.stop.set()
        self.join(130)
        return statistics.median(self.latencies), max(self.latencies)


# -- attack 2: big images --------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def big_png(width: int = 10900, height: int = 10900) -> bytes:
    """A valid RGBA PNG of zeros, compressed row by row: 462 KB that decode to 475 MB. Never held
    decoded here (a 43 KB row at a time)."""
    row = bytes(1 + 4 * width)  # filter byte 0, then the pixels
    z = zlib.compressobj(9)
    block = row * 64
    idat = b"".join([*(z.compress(block) for _ in range(height // 64)), z.compress(row * (height % 64)),
                     z.flush()])
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits, RGBA
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def a_scan() -> bytes:
    im = Image.effect_noise((1240, 1754), 40).convert("RGB")  # A4 at 150 dpi
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_six_big_pngs_at_once_are_refused_before_decoding_and_a_scan_still_passes(server: Server) -> None:
    r = httpx.post(f"{server.base}/api/v1/cases", headers=server.h("王芳"), json={
        "item_code": "FGSFZRBG", "applicant": {"name": "某分公司", "kind": "company"},
        "materials": FGS_BUT_LICENSE, "competent_region": "370211",
        "situation": answers_for("FGSFZRBG", FGS_BUT_LICENSE)})
    assert r.status_code == 201, r.text
    number, version = r.json()["number"], r.json()["version"]
    pages = f"{server.base}/api/v1/cases/{number}/materials/license/pages"
    bomb = big_png()
    assert 440_000 < len(bomb) < 480_000
    before = server.status()

    answers: list[httpx.Response] = []

    def upload() -> None:
        answers.append(httpx.post(pages, content=bomb, timeout=120, headers=server.h(
            "王芳", **{"Content-Type": "image/png", "X-File-Name": "license.png"})))

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    after = server.status()
    growth = after["VmHWM"] - before["VmHWM"]
    workers = {pid: server.status(pid)["VmHWM"] for pid in server.children()}
    print(f"\nsix 10900×10900 RGBA PNGs: server peak RSS {before['VmHWM'] / MB:.0f} → {after['VmHWM'] / MB:.0f} MB "
          f"(+{growth / MB:.1f} MB); worker peaks {[round(v / MB) for v in workers.values()]} MB; "
          f"answers {[a.status_code for a in answers]}")
    assert len(answers) == 6
    for a in answers:
        assert a.status_code == 422 and a.headers["content-type"] == "application/problem+json", a.text
        [err] = a.json()["errors"]
        assert err["field"] == "body" and err["code"] == "too_much_memory"
        assert "10900×10900" in err["reason"] and "内存" in err["reason"] and "上限" in err["reason"]
    assert growth < 150 * MB
    # The decodes ran nowhere: no worker came near the 475 MB one of them would need.
    assert workers and all(peak < 200 * MB for peak in workers.values()), workers

    listed = httpx.get(pages, headers=server.h("王芳")).json()["items"]
    case = httpx.get(f"{server.base}/api/v1/cases/{number}", headers=server.h("王芳")).json()
    assert listed == [] and case["version"] == version  # nothing stored, nothing changed

    scan = a_scan()
    r = httpx.post(pages, content=scan, timeout=60,
                   headers=server.h("王芳", **{"Content-Type": "image/jpeg", "X-File-Name": "license.jpg"}))
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (1240, 1754)
    deadline = time.monotonic() + 30
    while not (listed := httpx.get(pages, headers=server.h("王芳")).json()["items"])[0]["thumbnail_url"]:
        assert time.monotonic() < deadline, "no thumbnail"
        time.sleep(0.2)
    thumb = httpx.get(server.base + listed[0]["thumbnail_url"], headers=server.h("王芳"))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as im:
        assert max(im.size) == get_settings().thumbnail_px and im.format == "JPEG"


def many_pages_pdf(n: int) -> bytes:
    pages = [Image.new("L", (50, 70), 255) for _ in range(n)]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:])
    return out.getvalue()


def test_a_pdf_check_past_its_deadline_is_refused_and_the_next_one_passes(
        sqlite_demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = sqlite_demo
    demo.client.app.dependency_overrides[documents.get_object_store] = lambda: LocalStore(tmp_path / "o")  # type: ignore[attr-defined]
    n = demo.create("王芳", "FGSFZRBG", FGS_BUT_LICENSE, competent_region="370211")["number"]
    url = f"/api/v1/cases/{n}/materials/license/pages"
    pdf = many_pages_pdf(3000)  # pure-Python parsing: tenths of a second for 3000 page objects
    monkeypatch.setenv("TONGBAN_DECODE_SECONDS", "0.05")
    get_settings.cache_clear()
    try:
        r = demo.client.post(url, content=pdf, headers=demo.h("王芳", **{"Content-Type": "application/pdf"}))
    finally:
        monkeypatch.delenv("TONGBAN_DECODE_SECONDS")
        get_settings.cache_clear()
    assert r.status_code == 422, r.text
    [err] = r.json()["errors"]
    assert err["code"] == "too_slow" and "超过时限 0.05 秒" in err["reason"]
    assert demo.count("case_pages") == 0
    r = demo.client.post(url, content=many_pages_pdf(3), headers=demo.h("王芳", **{"Content-Type": "application/pdf"}))
    assert r.status_code == 201 and r.json()["pages"] == 3, r.text


# -- attack 3: YAML off the event loop -------------------------------------------------------

def big_definition(target: int = 510_000) -> bytes:
    """The demo item padded with materials to ``target`` bytes: PyYAML composes it in seconds."""
    text, lines, size, i = GGCS.replace("version: 4", "version: 90"), [], 0, 0
    size = len(text.encode())
    while size < target - 40:
        line = f"  - {{id: m{i:05d}, name: 材料{i:05d}}}\n"
        lines.append(line)
        size += len(line.encode())
        i += 1
    body = text.replace("materials:\n", "materials:\n" + "".join(lines), 1).encode()
    return body + b"#" * (target - len(body) - 1) + b"\n"


LAUGHS = "\n".join(["code: BOMB", "l0: &l0 lol",
                    *(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10))])


def test_a_clerk_is_answered_while_eight_big_definitions_are_published(server: Server) -> None:
    body = big_definition()
    assert len(body) == 510_000
    clerk = Clerk(server)
    clerk.start()
    time.sleep(1.0)
    idle = list(clerk.latencies)
    clerk.latencies.clear()

    answers: list[tuple[int, str, float]] = []

    def publish(data: bytes) -> None:
        t = time.perf_counter()
        r = httpx.post(f"{server.base}/api/v1/items", content=data, timeout=120,
                       headers=server.h("孙设计", **{"Content-Type": "application/yaml"}))
        answers.append((r.status_code, r.headers.get("content-type", ""), time.perf_counter() - t))

    threads = [threading.Thread(target=publish, args=(body,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    median, worst = clerk.summary()
    print(f"\neight 510 KB definitions: clerk GET idle median {statistics.median(idle) * 1000:.0f} ms; "
          f"under attack median {median * 1000:.0f} ms, max {worst * 1000:.0f} ms over {len(clerk.latencies)} "
          f"GETs; answers {[(s, round(d, 1)) for s, _, d in answers]}")
    assert clerk.statuses == {200}
    assert len(answers) == 8
    # Past the parse budget (422) or no worker free for the whole wait (503): never published.
    assert all(s in (422, 503) and ct == "application/problem+json" for s, ct, _ in answers), answers
    assert any(s == 422 for s, _, _ in answers)
    assert median < 0.2 and worst < 1.0, (median, worst)
    items = httpx.get(f"{server.base}/api/v1/items", headers=server.h("孙设计")).json()["items"]
    assert next(i for i in items if i["code"] == "GGCSWSXK")["latest_version"] == 4

    # Aliases expand within the node budget: a billion laughs is refused at once, and a body
    # beyond the definition size is refused while it streams in, before any parsing.
    t = time.perf_counter()
    r = httpx.post(f"{server.base}/api/v1/items", content=LAUGHS.encode(), timeout=30,
                   headers=server.h("孙设计", **{"Content-Type": "application/yaml"}))
    assert r.status_code == 422 and "别名展开也计入" in r.text and time.perf_counter() - t < 5, r.text

    def chunked() -> Any:
        for _ in range(100):
            yield b"# " + b"x" * 10_000 + b"\n"

    r = httpx.post(f"{server.base}/api/v1/items", content=chunked(), timeout=30,
                   headers=server.h("孙设计", **{"Content-Type": "application/yaml"}))
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "body", r.text


# -- attack 4: linear-time rules -------------------------------------------------------------

def test_a_nested_quantifier_pattern_evaluates_in_microseconds() -> None:
    rule = ReviewRule(id="name_form", label="名称格式", field="applicant.name", op="matches", value="(a|a)+$")
    case = {"applicant": {"name": "a" * 28 + "!"}}
    t = time.perf_counter()
    why = autoreview.check(rule, case, {})  # a backtracking engine takes 2^28 steps here (12 s)
    took = time.perf_counter() - t
    assert why is not None and "不满足 matches" in why
    assert took < 0.05, took
    assert autoreview.check(rule, {"applicant": {"name": "a" * 28}}, {}) is None


BACKREF = "    - {id: twice, label: 重复, field: applicant.name, op: matches, value: '(a+)\\1'}\n"
LOOKAHEAD = "    - {id: peek, label: 前瞻, field: applicant.name, op: matches, value: 'a(?=b)'}\n"


def with_rules(source: str, *rules: str, version: int = 5) -> str:
    return source.replace("version: 4", f"version: {version}").replace("  rules:\n", "  rules:\n" + "".join(rules), 1)


def test_a_pattern_re2_cannot_compile_is_refused_at_its_line(tmp_path: Path, sqlite_demo: Demo) -> None:
    text = with_rules(GGCS, BACKREF, LOOKAHEAD)
    path = tmp_path / "ggcs_v3.yaml"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    backref_line = next(i for i, line in enumerate(lines, 1) if "id: twice" in line)
    peek_line = next(i for i, line in enumerate(lines, 1) if "id: peek" in line)

    done = CliRunner().invoke(cli_app, ["items", "check", str(path)])
    assert done.exit_code == 1
    assert f"{path}:{backref_line}:" in done.output and f"{path}:{peek_line}:" in done.output, done.output
    assert "规则 'twice'" in done.output and "RE2" in done.output and "反向引用" in done.output

    r = sqlite_demo.client.post("/api/v1/items", content=text.encode(),
                                headers=sqlite_demo.h("孙设计", **{"Content-Type": "application/yaml"}))
    assert r.status_code == 422, r.text
    found = {e["line"]: e["reason"] for e in r.json()["errors"]}
    assert backref_line in found and "RE2" in found[backref_line] and peek_line in found
    assert sqlite_demo.count("item_versions", code="GGCSWSXK") == 1  # nothing published


@pytest.mark.timeout(120)
def test_an_evaluation_past_its_budget_hands_the_case_to_a_person(sqlite_demo: Demo,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    demo = sqlite_demo
    # Linear, but tens of milliseconds each on a 5 MB name: forty of them outlast a 0.3 s budget.
    heavy = [f"    - {{id: heavy{i}, label: 名称格式{i}, field: applicant.name, op: matches, "
             f"value: '(?:[ab]*a[ab]{{20}})*b|z{i:03d}'}}\n" for i in range(40)]
    r = demo.client.post("/api/v1/items", content=with_rules(GGCS, *heavy).encode(),
                         headers=demo.h("孙设计", **{"Content-Type": "application/yaml"}))
    assert r.status_code == 201, r.text
    monkeypatch.setenv("TONGBAN_RULE_BUDGET_SECONDS", "0.3")
    get_settings.cache_clear()
    try:
        with session_scope(demo.engine) as s:  # the engine takes what the API's schema would cap
            case, _ = create_case(s, demo.actor("王芳"), "GGCSWSXK",
                                  {"name": "ab" * 2_500_000, "kind": "company", "address": "济南市历下区"},
                                  dict(ALL_GGCS), situation=answers_for("GGCSWSXK", ALL_GGCS))
        n = case["number"]
        demo.fire("王芳", n, "accept")
        demo.fire("刘洋", n, "request_auto_review")
        t = time.perf_counter()
        run_jobs(demo.engine)
        took = time.perf_counter() - t
    finally:
        get_settings.cache_clear()
    view = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("刘洋")).json()
    assert view["state"]["id"] == "review"  # with a person, not stuck in 网络自动审批中
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("刘洋")).json()["items"]
    last = events[-1]
    assert last["trigger"] == "manual_review" and last["actor_name"] == "系统"
    assert "超过时限 0.3 秒" in last["comment"] and "转人工审核" in last["comment"], last
    assert last["data"]["auto_review"]["rule"] == "time_budget" and not last["data"]["auto_review"]["approved"]
    assert took < 20, took  # the overrun worker was killed, not waited for
    assert autoreview.decide_bounded(catalog.parse(GGCS, "g.yaml").definition.auto_review, case,
                                     dict(ALL_GGCS))[0].rule == "credit_code"  # a new worker took its place


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_clerk_is_answered_while_regex_attacks_run(server_factory: Any) -> None:
    """In the server's own drainer (embedded flows): cases whose applicant name is 28 ``a`` and
    ``!`` against ``(a|a)+$``; a backtracking engine holds the interpreter for seconds each."""
    server = server_factory(flows=True, flows_poll_seconds="0.3")
    rule = "    - {id: name_form, label: 名称格式, field: applicant.name, op: matches, value: '(a|a)+$'}\n"
    r = httpx.post(f"{server.base}/api/v1/items", content=with_rules(GGCS, rule).encode(), timeout=60,
                   headers=server.h("孙设计", **{"Content-Type": "application/yaml"}))
    assert r.status_code == 201, r.text

    def call(who: str, method: str, url: str, **kw: Any) -> dict[str, Any]:
        r = httpx.request(method, server.base + url, headers=server.h(who, **kw.pop("headers", {})),
                          timeout=120, **kw)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    numbers = []
    for _ in range(4):
        case = call("王芳", "POST", "/api/v1/cases", json={
            "item_code": "GGCSWSXK", "applicant": {"name": "a" * 28 + "!", "kind": "company",
                                                   "address": "济南市历下区"}, "materials": ALL_GGCS,
            "situation": answers_for("GGCSWSXK", ALL_GGCS)})
        case = call("王芳", "POST", f"/api/v1/cases/{case['number']}/triggers/accept",
                    headers={"If-Match": f'"{case["version"]}"'})
        numbers.append(case["number"])
    # 受理 notifies the applicant: once the drainer has done that, Prefect is up in the server and
    # what follows measures the rules, not Prefect's start.
    server.wait_for_jobs()
    clerk = Clerk(server)
    clerk.start()
    time.sleep(1.0)
    for n in numbers:
        version = call("刘洋", "GET", f"/api/v1/cases/{n}")["version"]
        call("刘洋", "POST", f"/api/v1/cases/{n}/triggers/request_auto_review", headers={"If-Match": f'"{version}"'})
    deadline = time.monotonic() + 300
    while any(call("刘洋", "GET", f"/api/v1/cases/{n}")["state"]["id"] != "review" for n in numbers):
        assert time.monotonic() < deadline, "the automatic review did not finish"
        time.sleep(0.5)
    median, worst = clerk.summary()
    print(f"\nfour (a|a)+$ reviews: clerk GET median {median * 1000:.0f} ms, max {worst * 1000:.0f} ms "
          f"over {len(clerk.latencies)} GETs")
    for n in numbers:
        last = call("刘洋", "GET", f"/api/v1/cases/{n}/history")["items"][-1]
        assert last["trigger"] == "manual_review" and "名称格式" in last["comment"], last
    assert median < 0.2 and worst < 1.0, (median, worst)
