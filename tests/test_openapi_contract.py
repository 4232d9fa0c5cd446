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
                         ("listItems", "ItemList"), ("listPages", "MaterialPages"),
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
    r = client.get("/api/v1/cases", params={"q": "张三"}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "q", r.text


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
