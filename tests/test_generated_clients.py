"""Clients generated from /openapi.json, as an integrator makes them, walk a clerk's case end to end.

A real uvicorn server on 127.0.0.1 (the seeded demo on SQLite) answers its own /openapi.json;
from that document alone:

- Python: ``openapi-python-client`` (the dev group's) generates a client; its project name comes
  from the API's title and pip-installs (uv, offline, into a directory of its own); the installed
  package — not the generator's output — runs the README's walk: 王芳 takes the case in at the
  Jinan counter and hands it to the competent counter (forward), 李强 in Qingdao approves and
  issues, 王芳 hands the result over, the applicant reads the progress with the query code. Every
  answer is the generated model (``CreatedCase``, ``Case``, ``Queue``, ``Progress``) with typed
  fields, and the refusals (412 stale version, 422 invalid field, 404) are ``Problem`` models
  with their fields; the client raises on any status the document does not name.
- TypeScript: ``openapi-typescript`` generates the types, ``tsc --strict`` compiles a walk that
  uses them (and fails on a file with deliberate type errors, so the types are neither ``any``
  nor ``unknown``), and node runs the compiled walk against the same server with fetch.

The npm packages come from tests/clients/package-lock.json, installed by ``./tongban test``'s
setup into var/clients-node (npm ci): the test itself sends nothing beyond the machine.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import ALL_FGS, serving

from api.app import create_app
from core.settings import ROOT
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

pytestmark = pytest.mark.slow  # generates and builds two clients (~20 s)

BIN = Path(sys.executable).parent
NODE_DIR = ROOT / "var" / "clients-node"
PACKAGE = "tongban_client"
# What openapi-python-client cannot express, each skipped with a warning: request bodies that are
# neither JSON, a form nor multipart — the item definition as YAML (publishItem is not generated)
# and a scan page as the raw image or PDF (uploadPage is generated with its multipart form).
# And answers that are one binary media type only (a PDF, a JPEG thumbnail): generated without a
# parsed answer; the bytes are ``sync_detailed(...).content``.
EXPECTED_WARNINGS = {
    ("POST /api/v1/items", "application/yaml"),  # the generator names the first of its two
    ("GET /api/v1/certificates/{number}/pdf", "application/pdf"),
    ("GET /api/v1/waybills/{number}/label.pdf", "application/pdf"),
    ("POST /api/v1/verify", "application/pdf"),  # a PDF to check, as the raw body
    ("GET /api/v1/cases/{number}/materials/{material_id}/pages/{page_id}/thumbnail", "image/jpeg"),
    ("POST /api/v1/video/rooms/{room_id}/stills/{request_id}", "image/jpeg"),  # a camera still, raw body
    *{("POST /api/v1/cases/{number}/materials/{material_id}/pages", t)
      for t in ("image/jpeg", "image/png", "image/tiff", "application/pdf")},
}


@dataclass
class Product:
    url: str
    tokens: dict[str, str]
    schema: Path
    engine: sa.Engine


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    tmp = tmp_path_factory.mktemp("clients")
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"] for t in seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml",
                                                      tmp / "tokens.json", 30)}
    with serving(create_app(engine)) as url:
        r = httpx.get(f"{url}/openapi.json", timeout=10)
        assert r.status_code == 200
        schema = tmp / "openapi.json"
        schema.write_bytes(r.content)
        yield Product(url, tokens, schema, engine)
    engine.dispose()


def _run(args: list[str | Path], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **kw.pop("env", {})}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=240, **kw)


def _warnings(output: str) -> set[tuple[str, str]]:
    """openapi-python-client's warnings as (operation, unsupported content type)."""
    found = set()
    for block in output.split("WARNING parsing ")[1:]:
        op = re.match(r"(\w+ \S+) within", block)
        media = re.search(r"Unsupported content[ _]type ([^\s),]+)", block)
        found.add((op.group(1) if op else block[:80], media.group(1) if media else block[:200]))
    return found


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).exists(), "uv is missing: ./tongban test installs it"
    return found


# --- Python ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def python_client(product: Product, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated client, pip-installed into a directory of its own and imported from there."""
    tmp = tmp_path_factory.mktemp("python-client")
    out = tmp / "generated"
    r = _run([BIN / "openapi-python-client", "generate", "--path", product.schema, "--output-path", out,
              "--meta", "setup"], cwd=tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _warnings(r.stdout + r.stderr) == EXPECTED_WARNINGS, r.stdout
    # The project is named after the API's title: a name pip accepts (PEP 508), a package Python imports.
    setup_py = (out / "setup.py").read_text(encoding="utf-8")
    assert re.search(r'name="tongban-client"', setup_py), setup_py
    assert (out / PACKAGE / "__init__.py").exists()
    site = tmp / "site"
    r = _run([_uv(), "pip", "install", "--offline", "--no-deps", "--no-build-isolation",
              "--python", sys.executable, "--target", site, out], cwd=tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    metadata = next(site.glob("tongban_client-*.dist-info")) / "METADATA"
    assert "Name: tongban-client" in metadata.read_text(encoding="utf-8")
    sys.path.insert(0, str(site))
    try:
        module = importlib.import_module(PACKAGE)
        assert Path(module.__file__ or "").is_relative_to(site)  # the installed copy
        yield module
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_the_generated_python_client_installs_and_walks_a_case_with_typed_answers(
        product: Product, python_client: Any) -> None:
    api = importlib.import_module(f"{PACKAGE}.api.cases")
    public = importlib.import_module(f"{PACKAGE}.api.public")
    m = importlib.import_module(f"{PACKAGE}.models")
    client_mod = importlib.import_module(f"{PACKAGE}.client")
    create_case, fire_trigger, get_case, list_queue = (importlib.import_module(f"{api.__name__}.{n}") for n in (
        "create_case", "fire_trigger", "get_case", "list_queue"))
    progress_query = importlib.import_module(f"{public.__name__}.get_progress")
    unset = importlib.import_module(f"{PACKAGE}.types").Unset

    def clerk(name: str) -> Any:
        return client_mod.AuthenticatedClient(base_url=product.url, token=product.tokens[name],
                                              raise_on_unexpected_status=True, timeout=httpx.Timeout(15))

    wang, li = clerk("王芳"), clerk("李强")
    # The fields are typed in the generated code itself (what an IDE or mypy sees).
    def hints(model: type) -> dict[str, Any]:
        return typing.get_type_hints(model, localns=vars(m))  # the models import each other for typing only

    assert hints(m.CreatedCase)["number"] is str and hints(m.CreatedCase)["query_code"] is str
    assert hints(m.CreatedCase)["state"] is m.StateView and hints(m.StateView)["id"] is str
    assert hints(m.Status)["code"] is m.StatusCode and hints(m.Progress)["status"] is m.Status  # one Status
    assert hints(m.QueueEntry)["state"] is m.StateRef and hints(m.Progress)["state"] is m.StateRef
    # If-Match is a required argument of every change: a client cannot forget it (the server's 428).
    assert inspect.signature(fire_trigger.sync).parameters["if_match"].default is inspect.Parameter.empty

    # 收件 at the Jinan counter, for a branch registered in Qingdao West Coast New Area (370211).
    body = m.CaseCreate(item_code="FGSFZRBG", competent_region="370211",
                        applicant=m.Applicant(name="青岛某某贸易有限公司黄岛分公司", kind=m.ApplicantKind.COMPANY,
                                              phone="0532-86000000", id_number="91370211061338419U",
                                              address="山东省青岛市黄岛区长江中路 216 号"),
                        materials=m.CaseCreateMaterials.from_dict(ALL_FGS),
                        situation=m.CaseCreateSituation.from_dict({"agent": "agent"}))
    answer = create_case.sync_detailed(client=wang, body=body)
    created = answer.parsed
    assert answer.status_code == 201 and isinstance(created, m.CreatedCase), answer.content
    assert re.fullmatch(r"370100\d{13}", created.number)
    assert created.state.id == "received" and created.status.code is m.StatusCode.RECEIVED
    assert (created.intake_counter, created.competent_counter) == ("jn-kuayu", "qd-xihai")
    assert created.mode is m.Mode.PROXY and created.mode.value == "异地代收代办"
    assert isinstance(created.created_at, dt.datetime) and created.created_at.utcoffset() is not None
    assert isinstance(created.deadlines.supplement_notice, dt.date) and created.deadlines.promised is None
    assert all(isinstance(x, m.MaterialView) and x.status is m.MaterialStatus.RECEIVED for x in created.materials)
    assert len(created.query_code) == 10
    assert answer.headers["etag"].startswith(f'"{created.version}-')
    location = answer.headers["location"]
    assert get_case.sync(location.rsplit("/", 1)[1], client=wang).number == created.number  # Location answers a GET
    n = created.number

    # 形式审查通过并移交: forward, without a body (the generated call sends none).
    forwarded = fire_trigger.sync(n, "forward", client=wang, if_match=f'"{created.version}"')
    assert isinstance(forwarded, m.Case), forwarded
    assert forwarded.state.id == "handling" and forwarded.holders == ["qd-xihai"]
    assert forwarded.version == created.version + 1
    queue = list_queue.sync(client=li)
    assert isinstance(queue, m.Queue) and n in [e.number for e in queue.items]
    entry = next(e for e in queue.items if e.number == n)
    assert isinstance(entry, m.QueueEntry) and entry.version == forwarded.version
    assert n not in [e.number for e in list_queue.sync(client=wang).items]

    # A stale If-Match: 412, as the typed Problem with the current version; nothing written.
    stale = fire_trigger.sync(n, "approve", client=li, if_match=f'"{created.version}"')
    assert isinstance(stale, m.Problem), stale
    assert (stale.status, stale.type_, stale.current_version) == (412, "/problems/stale-version", forwarded.version)
    assert isinstance(stale.title, str) and stale.detail
    assert isinstance(stale.errors, unset)  # absent, not null: a 412 names no field

    # 核准 at the competent counter, with a comment; then 出证 and back to Jinan for pickup.
    asked = next(t for t in forwarded.triggers if t.trigger == "approve").certificate_fields
    assert [f.id for f in asked] == ["company_type", "head", "head_id_number", "established_on", "scope"]
    licence = {"company_type": "有限责任公司分公司", "head": "张建国", "head_id_number": "11010519491231002X",
               "established_on": "2019-03-18", "scope": "日用百货销售"}
    approved = fire_trigger.sync(n, "approve", client=li, if_match=f'"{forwarded.version}"',
                                 body=m.TriggerBody(comment="材料齐全, 准予变更",
                                                    data=m.TriggerBodyDataType0.from_dict({"certificate": licence})))
    assert isinstance(approved, m.Case) and approved.state.id == "approved"
    assert isinstance(approved.deadlines.certificate, dt.date)
    issued = fire_trigger.sync(n, "issue", client=li, if_match=f'"{approved.version}"')
    assert isinstance(issued, m.Case) and issued.holders == ["jn-kuayu"]
    done = fire_trigger.sync(n, "hand_over", client=wang, if_match=f'"{issued.version}"')
    assert isinstance(done, m.Case)
    assert done.state.id == "completed" and done.state.final and done.status.code is m.StatusCode.APPROVED
    assert isinstance(done.finished_at, dt.datetime)
    # A trigger not open now: 409 with the open ones (none: the case is finished).
    closed = fire_trigger.sync(n, "approve", client=li, if_match=f'"{done.version}"')
    assert isinstance(closed, m.Problem) and closed.status in (403, 409), closed

    # An invalid field: 422 as the typed Problem naming it; no case was made.
    bad = create_case.sync(client=wang, body=m.CaseCreate(item_code="FGSFZRBG", competent_region="12",
                                                           applicant=m.Applicant(name="某公司")))
    assert isinstance(bad, m.Problem) and bad.status == 422, bad
    assert [e.field for e in bad.errors] == ["competent_region"] and isinstance(bad.errors[0], m.FieldError)

    # The applicant's progress query: no login, the query code.
    anonymous = client_mod.Client(base_url=product.url, raise_on_unexpected_status=True)
    progress = progress_query.sync(n, client=anonymous, code=created.query_code)
    assert isinstance(progress, m.Progress), progress
    assert progress.number == n and progress.status.code is m.StatusCode.APPROVED and progress.finished_at is not None
    assert progress.status.label == "办结(通过)"
    assert progress.steps and all(isinstance(s.at, dt.datetime) and s.label for s in progress.steps)
    wrong = progress_query.sync(n, client=anonymous, code="WRONG12345")
    assert isinstance(wrong, m.Problem) and wrong.status == 404

    # The server agrees: the walk is in the case's history, by the clerks named.
    with product.engine.connect() as conn:
        triggers = [t for (t,) in conn.execute(sa.text(
            "SELECT h.trigger FROM history h JOIN cases c ON c.id = h.case_id WHERE c.number = :n ORDER BY h.seq"),
            {"n": n})]
    assert triggers == [None, "forward", "approve", "issue", "hand_over"]


# --- TypeScript --------------------------------------------------------------------------------


# wrong.ts: each of its last lines must be refused by tsc (the types are neither any nor unknown).
CLIENTS = ROOT / "tests" / "clients"
WRONG_LINES = {9: "TS2322", 10: "TS2339", 11: "TS2322", 12: "TS2322", 13: "TS2322"}
TSCONFIG = {"compilerOptions": {"strict": True, "target": "es2022", "module": "es2022", "moduleResolution": "bundler",
                                "lib": ["es2022", "dom"], "outDir": "out", "noEmitOnError": True},
            "files": ["walkthrough.ts"]}


@pytest.fixture(scope="module")
def node_tools() -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node are not on this machine: the TypeScript client cannot be generated")
    bin_dir = NODE_DIR / "node_modules" / ".bin"
    assert (bin_dir / "openapi-typescript").exists() and (bin_dir / "tsc").exists(), (
        f"{NODE_DIR} lacks openapi-typescript/tsc: ./tongban test installs tests/clients/package-lock.json there")
    return bin_dir


def test_typescript_types_compile_strictly_and_the_walk_runs_in_node(
        product: Product, node_tools: Path, tmp_path: Path) -> None:
    # openapi-typescript 7 makes a property with a default required even in request bodies
    # (``defer: []`` of the intake): ``required`` alone tells what an answer always carries.
    r = _run([node_tools / "openapi-typescript", product.schema, "-o", tmp_path / "types.d.ts",
              "--default-non-nullable=false"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    types = (tmp_path / "types.d.ts").read_text(encoding="utf-8")
    # The walk's answers are typed: no `unknown` body for any of its operations.
    for op in ("createCase", "fireTrigger", "listQueue", "getCase", "getProgress"):
        block = re.search(rf"\n    {op}: {{(.*?)\n    }};", types, re.S)
        assert block, op
        assert '"application/json": unknown' not in block.group(1), op
    shutil.copy(CLIENTS / "walkthrough.ts", tmp_path)
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG), encoding="utf-8")
    r = _run([node_tools / "tsc", "-p", "tsconfig.json"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # The wrong file fails to compile, on exactly its wrong lines.
    shutil.copy(CLIENTS / "wrong.ts", tmp_path)
    r = _run([node_tools / "tsc", "--noEmit", "--strict", "--target", "es2022", "--moduleResolution", "bundler",
              "--module", "es2022", "wrong.ts"], cwd=tmp_path)
    errors = {int(line): code for line, code in re.findall(r"wrong\.ts\((\d+),\d+\): error (TS\d+)", r.stdout)}
    assert r.returncode != 0 and errors == WRONG_LINES, r.stdout
    # The compiled walk, against the live server.
    (tmp_path / "out" / "package.json").write_text('{"type": "module"}', encoding="utf-8")
    r = _run(["node", tmp_path / "out" / "walkthrough.js"], cwd=tmp_path, env={
        "TONGBAN_URL": product.url, "WANG": product.tokens["王芳"], "LI": product.tokens["李强"]})
    assert r.returncode == 0, r.stdout + r.stderr
    walk = json.loads(r.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"370100\d{13}", walk["num"]) and walk["state"] == "received" and walk["code"] == 1
    assert walk["holders"] == ["qd-xihai"] and walk["queued"] is True
    assert walk["current"] == walk["v"] - 3  # the 412 named the version after forward
    assert walk["fields"] == ["competent_region"]
    assert walk["asked"] == ["company_type", "head", "head_id_number", "established_on", "scope"]
    assert walk["status"] == "办结(通过)" and walk["finished"] and walk["steps"]
