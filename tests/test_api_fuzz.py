"""Property-based fuzzing of the whole clerk API from its own OpenAPI document (schemathesis).

Every operation gets generated requests as a clerk with every role at one counter; the rule
is simple: whatever the input, the answer is never a 5xx and never contradicts the
response schema the API declares.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from conftest import ALLIANCE, CATALOG
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from engine.actors import add_clerk
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope


def _app() -> tuple[Any, str]:
    """A seeded SQLite product built at collection time (schemathesis needs the app to collect)."""
    tmp = Path(tempfile.mkdtemp(prefix="tongban-fuzz-"))
    engine = make_engine(f"sqlite:///{tmp / 'fuzz.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        seed(s, CATALOG, ALLIANCE, tmp / "tokens.json", 30)
        _, token = add_clerk(s, "模糊测试", "pd-zhengwu",
                             ["clerk", "reviewer", "approver", "inspector", "designer"], 30)
    app = create_app(engine)
    return app, token


APP, TOKEN = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                           checks=[not_a_server_error, response_schema_conformance])


def test_deeply_nested_and_oversized_json_are_refused_without_a_5xx() -> None:
    from fastapi.testclient import TestClient

    client = TestClient(APP, raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    deep = '{"item_code": "GGCSWSXK", "applicant": {"name": "甲"}, "materials": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = client.post("/api/v1/cases", content=deep, headers=headers)
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/problem+json")
    big = '{"item_code": "' + "x" * 2_000_000 + '"}'
    r = client.post("/api/v1/cases", content=big, headers=headers)
    assert r.status_code == 413
