"""The OpenAPI document as a contract a generated client can live with (what schemathesis cannot
judge: names, languages, which statuses and headers are declared at all)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from storage.db import make_engine

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return dict(create_app(make_engine("sqlite://")).openapi())


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, o) for p, d in schema["paths"].items() for m, o in d.items()]


def test_operation_ids_are_what_a_person_would_write_and_summaries_are_chinese(schema: dict[str, Any]) -> None:
    ids = [o["operationId"] for _, _, o in operations(schema)]
    assert len(ids) == len(set(ids))
    for method, path, o in operations(schema):
        assert re.fullmatch(r"[a-z]+([A-Z][a-z0-9]*)*", o["operationId"]), (method, path, o["operationId"])
        assert CJK.search(o.get("summary", "")) and len(o["summary"]) <= 40, (o["operationId"], o.get("summary"))
    assert {"createCase", "fireTrigger", "getCase", "listQueue", "getProgress"} <= set(ids)


def test_every_error_is_one_problem_schema_and_fastapis_validation_error_is_gone(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components and "Problem" in components
    assert {"errors", "open_triggers", "missing", "current_version"} <= set(components["Problem"]["properties"])
    for method, path, o in operations(schema):
        for status, answer in o["responses"].items():
            if status.startswith(("4", "5")):
                assert list(answer["content"]) == ["application/problem+json"], (method, path, status)
                assert answer["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"}
        declared = set(o["responses"])
        if o.get("security"):
            assert {"401", "403"} <= declared, (method, path)
        if "{" in path:
            assert "404" in declared, (method, path)
        if "requestBody" in o:
            assert {"413", "422"} <= declared, (method, path)
        for status in ("429", "503"):
            if status in declared:
                assert "Retry-After" in o["responses"][status]["headers"], (method, path, status)


def test_bearer_scheme_and_required_if_match(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "opaque",
        "description": schema["components"]["securitySchemes"]["bearer"]["description"]}
    by_id = {o["operationId"]: o for _, _, o in operations(schema)}
    for op_id, o in by_id.items():
        names = [p["name"].lower() for p in o.get("parameters", []) if p["in"] == "header"]
        assert "authorization" not in names, op_id  # the security scheme carries it
    for op_id in ("fireTrigger", "setMaterial", "handOver", "extendCase", "claimStep", "releaseStep",
                  "reorderPages"):
        header = next(p for p in by_id[op_id]["parameters"] if p["name"] == "If-Match")
        assert header["required"] is True and "anyOf" not in header["schema"], op_id
        assert {"412", "428"} <= set(by_id[op_id]["responses"]), op_id
    upload = next(p for p in by_id["uploadPage"]["parameters"] if p["name"] == "If-Match")
    assert not upload.get("required")  # pages are appended: any version will do


def test_answers_are_typed_and_binary_answers_have_their_media_types(schema: dict[str, Any]) -> None:
    by_id = {o["operationId"]: o for _, _, o in operations(schema)}
    for op_id, model in (("createCase", "CreatedCase"), ("getCase", "Case"), ("fireTrigger", "Case"),
                         ("listQueue", "Queue"), ("getHistory", "History"), ("getProgress", "Progress"),
                         ("listItems", "ItemList"), ("listPages", "PageList"),
                         ("listCertificates", "CertificateList"), ("listWaybills", "WaybillList")):
        ok = next(s for s in by_id[op_id]["responses"] if s.startswith("2"))
        ref = by_id[op_id]["responses"][ok]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}", op_id
    assert set(by_id["getCertificatePdf"]["responses"]["200"]["content"]) == {"application/pdf"}
    assert "image/jpeg" in by_id["downloadPage"]["responses"]["200"]["content"]
    assert set(by_id["getItemDiagram"]["responses"]["200"]["content"]) == {"text/plain", "image/svg+xml"}


def test_the_server_answers_what_the_document_says() -> None:
    """428 for a missing If-Match, 405 with every method of the path, unknown query refused."""
    client = TestClient(create_app(make_engine("sqlite://")), raise_server_exceptions=False)
    r = client.options("/api/v1/items")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"GET", "POST"}
    r = client.get("/api/v1/cases", params={"keyword": "张三"}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "keyword", r.text


def test_cors_is_off_by_default_and_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    preflight = {"Origin": "https://gov.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "Authorization, If-Match"}
    client = TestClient(create_app(make_engine("sqlite://")), raise_server_exceptions=False)
    r = client.options("/api/v1/cases", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    monkeypatch.setenv("TONGBAN_CORS_ORIGINS", '["https://gov.example"]')
    get_settings.cache_clear()
    try:
        client = TestClient(create_app(make_engine("sqlite://")), raise_server_exceptions=False)
        r = client.options("/api/v1/cases", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://gov.example"
        assert "if-match" in r.headers["access-control-allow-headers"].lower()
        r = client.options("/api/v1/cases", headers={**preflight, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
    finally:
        get_settings.cache_clear()


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_every_list_answers_one_envelope(schema: dict[str, Any]) -> None:
    """A list is ``{"items": [...], "next_cursor": ...}`` wherever it is: no ``pages``, ``events``,
    ``rooms`` … of its own. Lists are the ``list…`` operations, the history and the export."""
    lists = []
    for _, _, o in operations(schema):
        ok = next((s for s in o["responses"] if s.startswith("2")), None)
        content = o["responses"].get(ok, {}).get("content", {}).get("application/json")
        answer = _resolve(schema, content["schema"]) if content else {}
        props = answer.get("properties", {})
        if o["operationId"].startswith("list") or o["operationId"] in ("getHistory", "exportCases"):
            lists.append(o["operationId"])
            assert set(props) == {"items", "next_cursor"}, (o["operationId"], sorted(props))
            assert set(answer["required"]) == {"items", "next_cursor"}, o["operationId"]
            assert _resolve(schema, props["items"])["type"] == "array"
        else:  # no list hides in another answer under a name of its own
            arrays = {k for k, v in props.items() if _resolve(schema, v).get("type") == "array"}
            assert not {"pages", "evidence", "certificates", "waybills", "rooms"} & arrays, o["operationId"]
    assert len(lists) >= 12, lists


def test_video_and_dashboard_answers_are_typed(schema: dict[str, Any]) -> None:
    by_id = {o["operationId"]: o for _, _, o in operations(schema)}
    for op_id, model in (("openRoom", "Room"), ("listRooms", "RoomList"), ("joinRoom", "Joined"),
                         ("viewPublisher", "SessionDescription"), ("leaveRoom", "Left"), ("endRoom", "RoomClosed"),
                         ("inviteParticipant", "VideoLink"), ("captureStill", "Page"),
                         ("submitInspection", "InspectionSubmitted"), ("getDashboard", "Dashboard")):
        ok = next(s for s in by_id[op_id]["responses"] if s.startswith("2"))
        ref = by_id[op_id]["responses"][ok]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}", op_id


def test_the_dashboard_answers_its_model(demo: Any) -> None:
    """The dashboard is encoded by hand (polled): its answer is checked against its model here."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from conftest import ALL_FGS, run_jobs

    from api.models import Dashboard
    from core import clock

    start = datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with clock.frozen(start):
        case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
        demo.fire("王芳", case["number"], "forward", case["version"])
        run_jobs(demo.engine)
        demo.create("王芳", "GGCSWSXK", {})
    with clock.frozen(start + timedelta(days=20)):
        r = demo.client.get("/api/v1/dashboard", headers=demo.h("赵督查"))
    assert r.status_code == 200, r.text
    d = Dashboard.model_validate(r.json())
    assert d.open_total == 2 and d.stuck.count == 2 and d.at_risk and d.handoffs
    assert d.handoffs[0].from_region == "370100" and d.handoffs[0].to == "370211"


def test_history_pages_with_its_cursor_and_link(demo: Any) -> None:
    from conftest import ALL_FGS

    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    demo.fire("王芳", case["number"], "forward", case["version"])
    everything = demo.client.get(f"/api/v1/cases/{case['number']}/history", headers=demo.h("王芳")).json()
    assert everything["next_cursor"] is None and len(everything["items"]) >= 2
    url = f"/api/v1/cases/{case['number']}/history"
    first = demo.client.get(url, params={"limit": 1}, headers=demo.h("王芳"))
    assert [e["seq"] for e in first.json()["items"]] == [everything["items"][0]["seq"]]
    assert first.json()["next_cursor"] == str(everything["items"][0]["seq"])
    assert first.headers["Link"] == f'<{url}?limit=1&cursor={first.json()["next_cursor"]}>; rel="next"'
    rest = demo.client.get(url, params={"cursor": first.json()["next_cursor"]}, headers=demo.h("王芳")).json()
    assert rest["items"] == everything["items"][1:] and rest["next_cursor"] is None


def test_fixed_vocabularies_are_named_once(schema: dict[str, Any]) -> None:
    """Modes, material, deadline, waybill and 办件 statuses are one component each, referenced
    everywhere (a generated client gets one ``Mode``, not a type per field)."""
    components = schema["components"]["schemas"]
    named = {n: sorted(map(str, components[n]["enum"])) for n in
             ("Mode", "MaterialStatus", "DeadlineStatus", "WaybillStatus", "ParticipantRole", "StatusCode")}
    assert all(components[n].get("x-enum-varnames") for n in named)

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "enum" in node and where not in {f"#/components/schemas/{n}" for n in named}:
                assert sorted(map(str, node["enum"])) not in named.values(), where
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(schema, "#")


def test_every_problem_type_resolves_to_a_page_explaining_it() -> None:
    """The ``type`` of a problem is a page (RFC 9457): each kind of refusal the product has
    (declared where it is raised) explains itself, in Chinese, at its URI."""
    from pathlib import Path

    from api.pages.problem_types import catalog

    client = TestClient(create_app(make_engine("sqlite://")), raise_server_exceptions=False)
    kinds = catalog()
    sources = [*Path("api").rglob("*.py"), *Path("engine").rglob("*.py")]
    used = {m for p in sources for m in re.findall(r'"(/problems/[a-z-]+)"', p.read_text(encoding="utf-8"))}
    assert used and used <= set(kinds), used - set(kinds)  # a literal type no class declares
    assert {"/problems/stale-version", "/problems/cross-origin", "/problems/too-large"} <= set(kinds)
    for uri, kind in kinds.items():
        assert CJK.search(kind.help) and len(kind.help) >= 20, uri
        r = client.get(uri)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"], uri
        assert kind.title in r.text and str(kind.status) in r.text and kind.help[:10] in r.text, uri
    index = client.get("/problems")
    assert index.status_code == 200 and all(f'href="{u}"' in index.text for u in kinds)
    # A problem answered by the API points at one of them.
    r = client.get("/api/v1/cases", params={"keyword": "x"}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 422 and r.json()["type"] in kinds
    assert client.get("/problems/no-such-thing").status_code == 404


def test_every_answer_writes_instants_the_same_way(demo: Any) -> None:
    """RFC 3339 in the product's zone (+08:00) from every encoder: the case (orjson), the typed
    lists (pydantic), the feed, the progress query. Recorded payloads (``data``) keep their own."""
    from conftest import ALL_FGS

    instant = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    n = case["number"]
    demo.fire("王芳", n, "forward", case["version"])
    h = demo.h("王芳")
    answers = [demo.client.get(u, headers=h).json() for u in (
        f"/api/v1/cases/{n}", "/api/v1/cases", f"/api/v1/cases/{n}/history", "/api/v1/events",
        f"/api/v1/items/{case['item']['code']}", f"/api/v1/cases/{n}/pages")]
    answers.append(demo.client.get(f"/api/v1/progress/{n}", params={"code": case["query_code"]}).json())
    seen: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k != "data":
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and instant.match(node):
            seen.append(node)

    for a in answers:
        walk(a)
    assert len(seen) >= 10 and all(s.endswith("+08:00") for s in seen), seen


# Operations whose engine refuses with 409 for a reason other than the case's state: a generated
# client must see the status (the stateful fuzz found DELETE counter answering an undocumented 409).
CONFLICTS = {
    ("delete", "/api/v1/directory/counters/{counter_id}"): "窗口仍有工作人员或自助终端",
    ("post", "/api/v1/tickets/call-next"): "叫号繁忙",
    ("post", "/api/v1/video/rooms/{room_id}/captures"): "参会者没有视频画面",
    ("post", "/api/v1/tickets"): "今日号码已取完",
}


def test_operations_that_refuse_with_409_document_it(schema: dict[str, Any]) -> None:
    undocumented = [f"{m.upper()} {p} ({why})" for (m, p), why in CONFLICTS.items()
                    if "409" not in schema["paths"][p][m]["responses"]]
    assert not undocumented
