"""The access matrix: roles × counters × endpoints (API and pages), every refusal logged."""

from __future__ import annotations

import logging

import pytest
from conftest import ALL_FGS, Demo, page_login

# Who is who in the demo alliance, for a case taken in at Jinan and handled in Qingdao.
INTAKE, COMPETENT, OTHER_CLERK = "王芳", "李强", "黄丽"
SUPERVISOR, FOREIGN_SUPERVISOR, DESIGNER = "赵督查", "钱督查", "孙设计"
READERS = {INTAKE, COMPETENT, SUPERVISOR}
EVERYONE = [INTAKE, COMPETENT, OTHER_CLERK, SUPERVISOR, FOREIGN_SUPERVISOR, DESIGNER, "applicant", "nobody"]


def _headers(demo: Demo, who: str) -> dict[str, str]:
    if who == "applicant":
        return {}
    if who == "nobody":
        return {"Authorization": "Bearer tb_not-a-real-token"}
    return demo.h(who)


@pytest.fixture
def case(demo: Demo) -> dict[str, str]:
    return demo.create(INTAKE, "FGSFZRBG", ALL_FGS, competent_region="370211")


def test_case_read_endpoints(demo: Demo, case: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    n = case["number"]
    cells = 0
    with caplog.at_level(logging.WARNING, logger="tongban.access"):
        for path in (f"/api/v1/cases/{n}", f"/api/v1/cases/{n}/history",
                     f"/api/v1/cases/{n}/materials/application/pages", f"/api/v1/cases/{n}/evidence"):
            for who in EVERYONE:
                caplog.clear()
                status = demo.client.get(path, headers=_headers(demo, who)).status_code
                expected = 200 if who in READERS else 401 if who in ("applicant", "nobody") else 403
                assert status == expected, (path, who, status)
                refused = [r for r in caplog.records if r.getMessage().startswith("refused")]
                assert bool(refused) == (expected != 200), (path, who)
                cells += 1
    assert cells == 32


def test_case_write_endpoints(demo: Demo, case: dict[str, str]) -> None:
    n, v = case["number"], case["version"]
    # Only the intake clerk may forward now; everyone else is refused and nothing is written.
    for who in [COMPETENT, OTHER_CLERK, SUPERVISOR, FOREIGN_SUPERVISOR, DESIGNER, "applicant", "nobody"]:
        r = demo.client.post(f"/api/v1/cases/{n}/triggers/forward",
                             headers={**_headers(demo, who), "If-Match": f'"{v}"'})
        assert r.status_code in (401, 403), (who, r.status_code)
        r = demo.client.put(f"/api/v1/cases/{n}/materials/license", json={"status": "missing"},
                            headers={**_headers(demo, who), "If-Match": f'"{v}"'})
        assert r.status_code in (401, 403), (who, r.status_code)
    assert demo.count("history") == 1
    assert demo.fire(INTAKE, n, "forward", v)["holders"] == ["qd-xihai"]


def test_queues_items_and_publishing(demo: Demo) -> None:
    for who in EVERYONE:
        h = _headers(demo, who)
        queue = demo.client.get("/api/v1/cases", headers=h).status_code
        items = demo.client.get("/api/v1/items", headers=h).status_code
        publish = demo.client.post("/api/v1/items", content=b"code: X", headers=h).status_code
        if who in ("applicant", "nobody"):
            assert (queue, items, publish) == (401, 401, 401), who
        elif who in (SUPERVISOR, FOREIGN_SUPERVISOR, DESIGNER):  # no counter of their own
            assert queue == 422 and items == 200, who
            assert publish == (422 if who == DESIGNER else 403), who
        else:
            assert (queue, items, publish) == (200, 200, 403), who
    # Supervisors read the queues of their own regions only; clerks only their counter's.
    assert demo.client.get("/api/v1/cases", params={"counter": "qd-xihai"},
                           headers=demo.h(SUPERVISOR)).status_code == 200
    assert demo.client.get("/api/v1/cases", params={"counter": "qd-xihai"},
                           headers=demo.h(FOREIGN_SUPERVISOR)).status_code == 403
    assert demo.client.get("/api/v1/cases", params={"counter": "qd-xihai"}, headers=demo.h(INTAKE)).status_code == 403


def test_pages_follow_the_same_rules(demo: Demo, case: dict[str, str]) -> None:
    n = case["number"]
    for who in EVERYONE:
        demo.client.cookies.clear()
        if who not in ("applicant", "nobody"):
            assert page_login(demo.client, demo.tokens[who]).status_code == 303  # a session of its own
        elif who == "nobody":
            demo.client.cookies.set("tb_session", "tb_not-a-real-token")
        r = demo.client.get(f"/ui/cases/{n}", follow_redirects=False)
        if who in READERS:
            assert r.status_code == 200 and n in r.text, who
        elif who in ("applicant", "nobody"):
            assert r.status_code in (302, 303, 307) and "/ui/login" in r.headers["location"], who
        else:
            assert r.status_code == 403, (who, r.status_code)
    demo.client.cookies.clear()
    # The applicant's way in is the case number and query code, nothing else.
    r = demo.client.get(f"/api/v1/progress/{n}", params={"code": case["query_code"]})
    assert r.status_code == 200 and "测试申请人" not in r.text
