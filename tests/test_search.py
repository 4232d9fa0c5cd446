"""GET /api/v1/cases?q=: search by number, name, ID number or credit code, phone, over open and
finished cases the clerk may read; unknown filter values are refused. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
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
                          ({"q": "   "}, "q"), ({"q": "x" * 65}, "q"), ({"q": "王\x00芳"}, "q")):
        r = demo.client.get("/api/v1/cases", params=params, headers=demo.h("陈静"))
        assert r.status_code == 422, (params, r.text)
        assert field in {e["field"] for e in r.json()["errors"]} or field in r.text
    assert demo.client.get("/api/v1/cases", params={"state": "received"}, headers=demo.h("陈静")).status_code == 200


def test_index_rows_key_every_field_both_ways_and_the_names_pairs() -> None:
    from storage.search_tables import index_rows

    search, keys, counters = index_rows(7, "310115202612020001", {
        "name": "欧阳 小龙", "id_number": "11010119900101123X", "phone": "021-6321 0987"},
        {"intake": "pd-zhengwu", "competent": "pd-shichang", "review": "pd-zhengwu"})
    assert search == {"case_id": 7, "name": "欧阳 小龙"}
    assert {k["key"] for k in keys} == {
        "f310115202612020001", "f欧阳 小龙", "f11010119900101123x", "f02163210987",  # as written, lower-cased
        "r" + "11010119900101123x"[::-1], "r78901236120",  # reversed: last digits are a key prefix
        "b欧阳", "b小龙"}  # the name's character pairs, none across the space
    assert [c["counter_id"] for c in counters] == ["pd-shichang", "pd-zhengwu"]


def test_search_tiers_two_character_names_digits_as_written_and_who_may_read(demo: Demo) -> None:
    def make(name: str, phone: str, id_number: str = "310101199001011234") -> str:
        return demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant={
            "name": name, "id_number": id_number, "phone": phone})["number"]

    prefix = make("王芳芳", "13912345678")
    contains = make("李王芳", "021-1391234", "11010119900101119X")
    exact = make("王芳", "1391234")
    other = demo.create("李强", "GGCSWSXK", ALL_GGCS, applicant={
        "name": "王芳", "id_number": "370202199001011237", "phone": "13912340000"})["number"]

    def found(q: str, who: str = "陈静", **params: str) -> list[str]:
        r = demo.client.get("/api/v1/cases", params={"q": q, **params}, headers=demo.h(who))
        assert r.status_code == 200, r.text
        return [c["number"] for c in r.json()["items"]]

    # A field equal to the query, then ending with it, then starting with it, then a name containing it.
    assert found("王芳") == [exact, prefix, contains]
    assert found("1391234") == [exact, contains, prefix]
    assert found("139-1234") == [exact, contains, prefix]  # as written: looked up by its digits too
    assert found("119x") == [contains]                      # last characters of an ID number ending in X
    assert found("王芳", limit="1") == [exact]
    assert found("芳芳") == [prefix]
    assert found("王") == [exact, prefix]                    # one character: names starting with it
    # The other counter's clerk reads only their own case; a supervisor of both regions reads all
    # four; one of an unrelated region none.
    assert found("王芳", who="李强") == [other]
    assert set(found("王芳", who="赵督查")) == {exact, prefix, contains, other}
    assert found("王芳", who="钱督查") == []


def test_the_migration_builds_the_index_of_cases_taken_in_before_it(demo: Demo) -> None:
    from alembic import command

    from storage import migrate

    n = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant={
        "name": "欧阳明", "id_number": "310101199001015673", "phone": "13800005678"})["number"]
    with demo.engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0031_kiosk_video")
        # 0020's one-text row is back, the keys are gone.
        assert "case_search_keys" not in sa.inspect(conn).get_table_names()
        assert "欧阳明" in conn.execute(sa.text("SELECT terms FROM case_search")).scalar_one()
    migrate.upgrade(demo.engine)
    for q in ("欧阳", "5678", "1380000", n, "阳明"):
        r = demo.client.get("/api/v1/cases", params={"q": q}, headers=demo.h("陈静"))
        assert [c["number"] for c in r.json()["items"]] == [n], q
