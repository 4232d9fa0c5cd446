"""GET /api/v1/cases?q=: search by number, name, ID number or credit code, phone, over open and
finished cases the clerk may read; unknown filter values are refused. SQLite and PostgreSQL."""

from __future__ import annotations

from conftest import ALL_GGCS, Demo


def test_search_finds_by_every_field_ranked_and_only_what_the_clerk_may_read(demo: Demo) -> None:
    a = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant={
        "name": "上海黄浦区欧阳小龙餐饮店", "kind": "company", "id_number": "91310101MA1FPX1234",
        "phone": "021-63210987"})
    b = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant={
        "name": "欧阳明", "id_number": "310101199001011234", "phone": "13800001111"})

    def found(q: str, who: str = "陈静", **params: str) -> list[str]:
        r = demo.client.get("/api/v1/cases", params={"q": q, **params}, headers=demo.h(who))
        assert r.status_code == 200, r.text
        return [c["number"] for c in r.json()["items"]]

    assert found(a["number"]) == [a["number"]]
    assert found("小龙餐饮") == [a["number"]]           # Chinese substring, 3+ characters
    assert found("欧阳") == [b["number"], a["number"]]  # two characters: both, newest first
    assert found("欧阳明") == [b["number"]]             # the exact name ranks (and only it matches)
    assert found("91310101ma1fpx1234") == [a["number"]]  # credit code, any case
    assert found("1234") == [b["number"], a["number"]]   # last digits of both
    assert found("13800001111") == [b["number"]]
    assert found("63210987") == [a["number"]]            # phone digits without the area code
    assert found("没有这个人") == []
    # Finished cases are found too; finished= narrows.
    n, version = a["number"], a["version"]
    for trigger in ("accept", "start_review", "approve", "issue", "deliver"):
        version = demo.fire("陈静", n, trigger, version)["version"]
    assert found("欧阳") == [b["number"], n]
    assert found("欧阳", finished="true") == [n]
    assert found("欧阳", finished="false") == [b["number"]]
    # A clerk of a counter that never took part finds nothing.
    assert found("欧阳", who="李强") == []


def test_unknown_filter_values_are_422_naming_the_field(demo: Demo) -> None:
    for params, field in (({"state": "nosuch"}, "state"), ({"item": "NOSUCH"}, "item"),
                          ({"q": "   "}, "q"), ({"q": "x" * 65}, "q")):
        r = demo.client.get("/api/v1/cases", params=params, headers=demo.h("陈静"))
        assert r.status_code == 422, (params, r.text)
        assert field in {e["field"] for e in r.json()["errors"]} or field in r.text
    assert demo.client.get("/api/v1/cases", params={"state": "received"}, headers=demo.h("陈静")).status_code == 200
