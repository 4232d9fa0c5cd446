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
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

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
                             ["clerk", "reviewer", "approver", "inspector", "designer", "directory_admin"], 30)
    app = create_app(engine)
    return app, token


APP, TOKEN = _app()
# Where a check's default expectation is not this API's documented behaviour:
# - a missing If-Match is 428 Precondition Required (RFC 6585), not a generic 4xx;
# - a body over the byte budget is refused as 413 before it is parsed;
# - a schema-valid item definition, item code, clerk, address or paging cursor can still be
#   refused on its meaning (an unknown state, item or clerk, a cursor this server never issued):
#   422, with the field and the reason; so is an Idempotency-Key already used for another request
#   (draft-ietf-httpapi-idempotency-key: 422), and a webhook URL with credentials; a guide's
#   情形 answer that names no question or option of the item; a directory record naming a region,
#   unit or counter the directory does not list.
# The clerk's token goes through the schema's own security scheme (not a fixed header), so a
# generated request without it is one schemathesis knows to be unauthenticated.
CONFIG = SchemathesisConfig.from_str(f"""
[auth.openapi.bearer]
bearer = "{TOKEN}"

[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "422", "428"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# A valid request can meet a case that moved on (412: If-Match names an older version).
[checks.positive_data_acceptance]
expected-statuses = ["2XX", "401", "403", "404", "409", "412", "429"]

[[operations]]
include-operation-id = ["publishItem", "listQueue", "createCase", "handOver", "bookWaybill", "fireTrigger",
                        "recordTrackingByHand", "listEvents", "createWebhook", "searchLibrary", "listSlots",
                        "createAppointment", "rescheduleAppointment", "takeTicket", "createEvaluation",
                        "getGuide", "createPrereview", "setRegion", "setUnit", "setCounter", "setCounterItems",
                        "setClerk"]
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "403", "404", "409", "412", "422", "429"]
""")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
load_all_checks()
# Every check schemathesis has: no 5xx, and the answers (status, media type, headers, body) are
# what the schema says; invalid input refused, valid input accepted, auth not ignored, …
ALL_CHECKS = CHECKS.get_all()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(checks=ALL_CHECKS)


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


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Stateful: sequences of calls linked through the answers' own fields (a created case's
    ``number`` into its reads, triggers, materials, claims …), every check on every answer."""

    def before_call(self, case: Any) -> None:
        # Realistic data where generated data would only ever meet "unknown item": a real item
        # and, for triggers, a version the case may really be at.
        # Only a valid generated code is replaced: a negative case keeps its invalid one.
        if case.operation.label == "POST /api/v1/cases" and isinstance(case.body, dict):
            code = case.body.get("item_code")
            if isinstance(code, str) and code.strip() and len(code) <= 200:
                case.body["item_code"] = "GGCSWSXK"

    def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
        case.validate_response(response, checks=ALL_CHECKS, transport_kwargs=kwargs)


def test_stateful_sequences_answer_as_documented() -> None:
    # No example database: a sequence replayed from an earlier run meets a database it changed.
    Workflow.run(settings=settings(max_examples=60, deadline=None, stateful_step_count=8, database=None,
                                   suppress_health_check=list(HealthCheck)))
