"""Shared fixtures: a migrated, seeded database on SQLite and on PostgreSQL, and an API client."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import ROOT, get_settings
from engine import catalog
from engine.actors import authenticate
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope
from storage.object_factory import get_store
from tests import db_templates
from tests.netns import NetNS, NetNSUnavailable

# Helpers working in parallel point this at a database of their own.
# Prefect's temporary server logs its shutdown after pytest has closed the streams at exit;
# without this, "--- Logging error ---" tracebacks follow the summary line.
logging.raiseExceptions = False

# Tests talk to 127.0.0.0/8 only (and inside namespaces of their own, below). A library that
# fetches from the internet by itself — Prefect's server reads its collection registry from GitHub
# when a worker starts, then falls back to its bundled copy — is pointed at a proxy that is not
# there (a closed loopback port), so not even a DNS query leaves the machine; loopback goes direct.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ[_name] = os.environ[_name.lower()] = "http://127.0.0.1:9"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

PG_URL = os.environ.get("TONGBAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _worker_database(url: str) -> str:
    """Under pytest-xdist (``./tongban test -n 2``) each worker resets a database of its own,
    ``<db>_gw0``, ``<db>_gw1`` …, made here once on the same server."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not re.fullmatch(r"gw\d+", worker):
        return url
    base, name = url.rsplit("/", 1)
    mine = f"{name}_{worker}"
    admin = sa.create_engine(f"{base}/{name}", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (mine,)).first() is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{mine}"')
    except sa.exc.OperationalError:
        pass  # no server: the postgres tests fail on their own with the reason
    finally:
        admin.dispose()
    return f"{base}/{mine}"


PG_URL = _worker_database(PG_URL)
CATALOG = ROOT / "catalog" / "items"
ALLIANCE = ROOT / "catalog" / "alliance.yaml"


def _empty_public_schema(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def _migrated(engine: sa.Engine) -> None:
    migrate.upgrade(engine)


def _seeded(tmp_path_factory: pytest.TempPathFactory) -> db_templates.Build:
    def build(engine: sa.Engine) -> db_templates.Tokens:
        migrate.upgrade(engine)
        with session_scope(engine) as s:
            return seed(s, CATALOG, ALLIANCE, tmp_path_factory.mktemp("seed") / "tokens.json", 30)
    return build


def _fresh(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory, *, seeded: bool) -> db_templates.Tokens | None:
    """``engine``'s database as a fresh migration (and demo seed) leaves it, copied from a
    template (tests/db_templates.py)."""
    name = "demo" if seeded else "migrated"
    build = _seeded(tmp_path_factory) if seeded else _migrated
    if engine.dialect.name == "sqlite":
        return db_templates.sqlite_copy(engine, name, build, make_engine, tmp_path_factory.getbasetemp())
    catalog.forget_compiled()  # the same URL, another database: item version ids may differ
    return db_templates.pg_restore(engine, name, build, lambda: _empty_public_schema(engine))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'tongban.db'}" if request.param == "sqlite" else PG_URL)
    _fresh(engine, tmp_path_factory, seeded=False)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'tongban.db'}")
    _fresh(engine, tmp_path_factory, seeded=False)
    yield engine
    engine.dispose()


class Demo:
    """The seeded demo: tokens by clerk name, and helpers to call the API as them."""

    def __init__(self, engine: sa.Engine, client: TestClient, tokens: list[dict[str, str]]) -> None:
        self.engine, self.client = engine, client
        self.tokens = {t["name"]: t["token"] for t in tokens}

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def actor(self, who: str):  # type: ignore[no-untyped-def]
        with session_scope(self.engine) as s:
            return authenticate(s, self.tokens[who])

    def create(self, who: str, item: str, materials: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
        payload = {"item_code": item, "applicant": dict(DEMO_APPLICANT),
                   "materials": materials or {}, **body}
        if "situation" not in body and (answers := answers_for(item, payload["materials"])):
            payload["situation"] = answers
        r = self.client.post("/api/v1/cases", json=payload, headers=self.h(who))
        assert r.status_code == 201, r.text
        return r.json()

    def fire(self, who: str, number: str, trigger: str, version: int | None = None,
             expect: int = 200, **body: Any) -> dict[str, Any]:
        if version is None or ("data" not in body and trigger in APPROVING):  # data=None: none at all
            case = self.client.get(f"/api/v1/cases/{number}", headers=self.h(who)).json()
            version = case["version"] if version is None else version
            if "data" not in body:
                body = {**body, **certificate_data(case, trigger)}
        r = self.client.post(f"/api/v1/cases/{number}/triggers/{trigger}", json=body or None,
                             headers=self.h(who, **{"If-Match": f'"{version}"'}))
        assert r.status_code == expect, r.text
        return r.json()

    def count(self, table: str, **where: Any) -> int:
        q = f"SELECT count(*) FROM {table}"
        if where:
            q += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(q), where).scalar_one())


@pytest.fixture
def objects(tmp_path: Path) -> Iterator[None]:
    """The object store in this test's own folder (the notices, scans and certificates it writes)."""
    get_settings().object_dir = tmp_path / "objects"
    get_store.cache_clear()
    yield
    get_store.cache_clear()


@pytest.fixture
def demo(db: sa.Engine, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    yield from _demo(db, tmp_path, tmp_path_factory)


@pytest.fixture
def sqlite_demo(sqlite_db: sa.Engine, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    yield from _demo(sqlite_db, tmp_path, tmp_path_factory)


def _demo(engine: sa.Engine, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tokens = _fresh(engine, tmp_path_factory, seeded=True) or []
    db_templates.write_tokens(tokens, tmp_path / "tokens.json")  # where the seed keeps them
    app = create_app(engine)
    with TestClient(app) as client:
        yield Demo(engine, client, tokens)


def page_login(client: httpx.Client, token: str, next_path: str = "/ui/") -> httpx.Response:
    """Sign in on the pages as a browser does: the login form first (its pre-session cookie and
    token), then the POST from the page's own origin. Later cookie-carrying POSTs need that
    ``Origin`` too: make the client with ``headers={"Origin": ...}`` (``origin_of(client)``)."""
    form = client.get("/ui/login")
    found = re.search(r'name="login_csrf" value="([0-9a-f]+)"', form.text)
    data = {"token": token, "next": next_path, "login_csrf": found.group(1) if found else ""}
    return client.post("/ui/login", data=data, headers={"Origin": origin_of(client)}, follow_redirects=False)


def origin_of(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


# The demo applicant: a company with a well-formed 统一社会信用代码 and an address, as the items'
# certificates read them from the application.
DEMO_APPLICANT = {"name": "测试申请人", "kind": "company", "phone": "0531-88880000",
                  "id_number": "91370100MA3C4K2L43", "address": "山东省济南市历下区经十路 100 号"}
# What approvers enter for the demo items' certificates (data.certificate.<field>) when a test
# fires an approving trigger without data of its own.
APPROVING = {"approve", "education_approve", "market_approve"}
CERT_VALUES = {
    "company_type": "有限责任公司分公司", "head": "张建国", "head_id_number": "11010519491231002X",
    "established_on": "2019-03-18", "scope": "日用百货销售", "founder": "某教育科技有限公司",
    "principal": "李文", "school_type": "营利性民办培训学校", "programmes": "文化艺术类培训",
    "credit_code": "91310115MA1H8K2D11", "legal_rep": "王明", "capital": "人民币 100 万元",
    "business_name": "济南市历下区张记餐饮店", "entity_type": "个体工商户", "organisation": "个人经营",
    "food_category": "餐饮服务经营者(小型餐馆)", "food_items": "热食类食品制售; 冷食类食品制售",
}


def certificate_data(case: dict[str, Any], trigger: str) -> dict[str, Any]:
    """What an approver enters beside ``trigger`` for the certificate's fields the case asks for
    (``{"data": {"certificate": …}}``), or nothing when the trigger asks for none."""
    wanted = next((t.get("certificate_fields") for t in case.get("triggers", []) if t["trigger"] == trigger), None)
    return {"data": {"certificate": {f["id"]: CERT_VALUES[f["id"]] for f in wanted}}} if wanted else {}


@functools.cache
def _situations(code: str) -> tuple[tuple[str, tuple[tuple[str, frozenset[str]], ...]], ...]:
    items = catalog.read_catalog(ROOT / "catalog" / "items")
    d = next((i.definition for i in items if i.definition.code == code), None)
    return tuple((q.id, tuple((o.id, frozenset(o.materials)) for o in q.options)) for q in d.situations) if d else ()


def answers_for(code: str, materials: dict[str, str] | list[str]) -> dict[str, str]:
    """The 情形 answers an application that brings ``materials`` gave (for tests that bring a list
    and do not ask a question): per question the option whose materials it brings, the most of
    them; none brought, the first option that asks for none."""
    brought = set(materials)
    out = {}
    for qid, options in _situations(code):
        fitting = [(len(ms), -i, oid) for i, (oid, ms) in enumerate(options) if ms <= brought]
        out[qid] = max(fitting)[2] if fitting else options[0][0]
    return out


def situation_form(code: str, materials: dict[str, str] | list[str]) -> list[str]:
    """The same answers as the intake page's ``situation`` selects send them (question:option)."""
    return [f"{q}:{o}" for q, o in answers_for(code, materials).items()]


def answer_situations(page: Any) -> None:
    """On the intake page (a Playwright page): answer the 情形 selects as the ticked materials need."""
    code = page.locator("input[type=hidden][name=item]").first.input_value()
    ticked = page.locator("input[name=materials]:checked").evaluate_all("boxes => boxes.map(b => b.value)")
    for q, o in answers_for(code, ticked).items():
        page.select_option(f"#situations select[name=situation]:has(option[value='{q}:{o}'])", f"{q}:{o}")


ALL_GGCS = {m: "received" for m in ("application_form", "legal_rep_id", "floor_plans",
                                      "hygiene_report", "hygiene_rules")}
ALL_FGS = {m: "received" for m in ("application", "power_of_attorney", "appointment_docs", "license")}


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, default=str)


# Headless Chromium as every browser test launches it (Debian's, never a downloaded one).
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
# Pages that use a camera (高拍仪, video rooms): Chromium's test pattern, granted without a prompt.
CAMERA_ARGS = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
# WebRTC against the in-process aiortc peer: real host candidates, not mDNS names.
NO_MDNS = "--disable-features=WebRtcHideLocalIpsWithMdns"


@contextmanager
def chromium(*extra: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, *extra])
        try:
            yield b
        finally:
            b.close()


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[str]:
    """A real uvicorn server for ``app`` in a thread on a free 127.0.0.1 port; yields its URL.
    ``config``: more ``uvicorn.Config`` options (those ``tongban serve`` gives, say)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, **{"log_level": "warning", **config, "lifespan": "off"}))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def serve_app() -> Iterator[Any]:
    """Call it with an app; it returns the base URL. Servers stop when the test ends."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serving(app))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, seconds: float, interval: float = 0.1) -> bool:
    """Poll ``url`` until it answers 200; False if ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-protocol server (moto in server mode) for the session: ``127.0.0.1:<port>``.

    Moto keeps its data in process memory, so several servers in one test process share it.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()



# -- markers by module ----------------------------------------------------------------------------
# What each kind of test needs or costs, for selecting (see docs/testing.md). Modules this table
# does not name may carry their own ``pytestmark``; the ``postgres`` mark comes with the ``db``
# fixture's PostgreSQL case. ``./tongban test --quick`` adds
# ``-m "not browser and not distributed and not slow and not netns and (not postgres or dialect)"
# -k "not sqlite-s3"``.
MARKS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "test_flows_distributed.py": ("distributed",),  # PostgreSQL-backed Prefect server, two workers
    "test_distributed_tls.py": ("distributed",),    # the same over TLS: its own PostgreSQL cluster, one worker
    "test_crash_safety.py": ("slow",),               # SIGKILLs a server under load, three times
    "test_api_fuzz.py": ("slow",),                   # schemathesis over every operation
    "test_fuzz_definitions.py": ("slow",),           # hypothesis on item definitions
    "test_flows_embedded.py": ("slow",),             # Prefect's temporary server (~15 s to start), real runs
    "test_install_secrets.py": ("slow",),            # fresh installations: four CLI processes, ~7 s
    "test_round_trips.py": ("dialect",),             # what each dialect sends to the server
    "test_engine_races.py": ("dialect",),            # row locks and racing writers
    "test_unit_of_work.py": ("dialect",),            # commits on the route's thread, per dialect
    "test_outbox_notify.py": ("dialect",),           # PostgreSQL's NOTIFY to listening drainers
}
# Single tests that start the product's command line in a new interpreter (2–6 s each).
MARKS_BY_TEST: dict[str, tuple[str, ...]] = {
    "test_catalog_versions.py::test_serve_starts_on_embedded_defaults": ("slow",),
    "test_scans.py::test_sweep_command_line": ("slow",),
    "test_definitions.py::test_cli_check_prints_located_problems_and_exits_nonzero": ("slow",),
    "test_definitions.py::test_cli_graph_writes_svg": ("slow",),
    "test_audit.py::test_cli_audit_verify_exit_code": ("slow",),
    "test_security_limits.py::test_tongban_serve_limits_a_rotated_flood": ("slow",),
    "test_verify.py::test_cli_seals_and_verify_exit_codes": ("slow",),  # eight CLI processes
    # One Chromium walk through the whole hall (~16 s): booking, ticket, check-in, call, intake, the
    # pad, 整改 → 回访 → 申诉 → 复核 and the figures, four signed-in contexts.
    "test_hall_browser.py::test_booking_ticket_call_intake_rating_rectification_appeal_and_figures": ("slow",),
    # Chromium walks of many steps each (two browser contexts; the booth's fake camera).
    "test_guide_browser.py::test_a_prereview_on_a_phone_commented_by_a_clerk_becomes_a_case": ("slow",),
    "test_guide_browser.py::test_the_booth_captures_each_material_into_a_case_prints_the_receipt_and_resets":
        ("slow",),
    # 视频帮办: the booth and a clerk in two contexts, both connected through the aiortc hub (~10 s).
    "test_guide_browser.py::test_the_booths_video_help_call_is_answered_by_a_clerk_of_its_supervising_counter":
        ("slow",),
    # One Chromium walk through a whole case, F5/Back/Forward after each of its 15 POSTs, the
    # certificate drawn and signed (~40 s on a shared 2-core machine).
    "test_workbench_browser.py::test_a_clerk_day_in_the_pages_one_role_each": ("slow",),
    # Chromium and an aiortc peer through Janus, then the recording job converting both: ~11 s.
    "test_video_janus.py::test_chromium_and_aiortc_in_one_janus_room": ("slow",),
    # Every demo item from intake to its end in Chromium, F5/Back/Forward after each of ~50 POSTs,
    # certificates drawn and signed, a remote inspection in the video room (~100 s on a loaded
    # 2-core machine). Its keyboard and phone tests (~3 s and ~7 s) are browser tests only.
    "test_walk_browser.py::test_every_demo_item_from_intake_to_delivery_in_the_pages": ("slow",),
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A module that ``-m`` deselects whole, by its marks above, is not even imported (saves the
    seconds test_api_fuzz takes to build its schema). Whatever other marks its tests might carry,
    the expression must be false for all of them; else it is collected as usual."""
    marks = MARKS_BY_MODULE.get(collection_path.name)
    expr = config.getoption("markexpr", "")
    if not marks or not expr:
        return None
    known = sorted({line.split(":")[0].strip() for line in config.getini("markers")})
    names = set(re.findall(r"[A-Za-z_][\w-]*", expr)) - {"and", "or", "not"}
    if not names <= set(known):
        return None
    from _pytest.mark.expression import Expression

    compiled, others = Expression.compile(expr), [m for m in known if m not in marks]
    for bits in range(1 << len(others)):
        have = set(marks) | {m for i, m in enumerate(others) if bits >> i & 1}
        if compiled.evaluate(lambda name, /, have=have, **kw: name in have):
            return None
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        test = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        for name in (*MARKS_BY_MODULE.get(item.path.name, ()), *MARKS_BY_TEST.get(test, ())):
            item.add_marker(name)


# -- tests in a network namespace of their own -----------------------------------------------------
# WebRTC peers gather host candidates from every non-loopback interface, and Chromium looks up
# Google's hosts through the machine's resolver: on the machine itself both would use eth0. A test
# marked ``netns`` runs its setup, body and teardown with this thread inside a private namespace
# (lo, and a veth pair with 10.77.0.1; tests/netns.py): the servers and browsers it starts live
# there too. PostgreSQL is out of reach in there: such tests use SQLite.
_netns: NetNS | Exception | None = None


def _private_netns() -> NetNS:
    global _netns
    if _netns is None:
        try:
            _netns = NetNS()
        except (NetNSUnavailable, OSError) as exc:
            _netns = exc
    if isinstance(_netns, Exception):
        pytest.fail("this test exchanges media or runs Chromium, which may only send traffic inside a network "
                    f"namespace the test makes itself (tests/netns.py); it could not be made here: {_netns}. "
                    "Run the tests as root on Linux with iproute2 (./tongban test does).", pytrace=False)
    return _netns


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the runner's own setup (the fixtures); a failure here is the test's setup error."""
    if item.get_closest_marker("netns") is not None:
        _private_netns().enter()


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    if isinstance(_netns, NetNS):
        _netns.leave()


def pytest_unconfigure(config: pytest.Config) -> None:
    if isinstance(_netns, NetNS):
        _netns.close()


def run_jobs(engine: sa.Engine, rounds: int = 10) -> None:
    """Drain the outbox with the job handlers themselves: the flows' work, without Prefect (the
    flows' own tests run them through Prefect)."""
    from flows import jobs, outbox

    for _ in range(rounds):
        claimed = outbox.claim(engine, None, 100)
        if not claimed:
            return
        for job in claimed:
            jobs.run(engine, job)
