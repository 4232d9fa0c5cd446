"""办件数据交换: a case walked through intake → 补正 → 受理 → 特别程序 → 延期 → 办结 and exported in
GB/T 39046-2020's data items (JSON and CSV, each mapped field checked against the case), the
incremental cursor (changed cases come back, unchanged ones don't, none is skipped while writers
commit out of order on PostgreSQL), who may export (and with which personal data), the export
log, the command line run for real, and schemathesis on the operation with an exchange token."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from core.settings import ROOT
from engine import exchange, intake
from engine.actors import Actor, add_clerk, authenticate
from engine.advance import advance
from engine.dashboard import set_supervised_regions
from storage.db import session_scope
from storage.exchange_tables import T_EXPORT
from storage.tables import Clerk

EXPORT = "/api/v1/exchange/cases"
CITIZEN_ID = "11010519491231002X"  # a valid check character (GB 11643-1999)
PERSON = {"name": "张三丰", "kind": "person", "id_number": CITIZEN_ID, "phone": "13800138000",
          "address": "上海市浦东新区世纪大道100号"}


def account(demo: Demo, name: str, roles: list[str], regions: list[str] | None = None) -> str:
    """A new account (no counter) and its bearer token, like ``tongban clerks add``."""
    with session_scope(demo.engine) as s:
        clerk, token = add_clerk(s, name, None, roles, 30)
        if regions:
            set_supervised_regions(s, clerk, regions)
    demo.tokens[name] = token
    return token


def settle(engine: sa.Engine, seconds: float = 30) -> None:
    """PostgreSQL: wait until every committed change lies below the export's horizon. The horizon
    is the server's oldest running transaction, in any database: another test run's transaction
    on the same server holds it back for as long as it runs (the export lags; it never skips)."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + seconds
    with engine.connect() as conn:
        while True:
            top = conn.execute(sa.text("SELECT max(seq) FROM case_changes")).scalar()
            xmin = conn.execute(sa.text("SELECT txid_snapshot_xmin(txid_current_snapshot())")).scalar_one()
            conn.rollback()
            if top is None or xmin > top:
                return
            assert time.monotonic() < deadline, "a transaction on the PostgreSQL server has run for too long"
            time.sleep(0.05)


def export(demo: Demo, who: str, expect: int = 200, wait: bool = True, **params: Any) -> Any:
    if wait:
        settle(demo.engine)
    r = demo.client.get(EXPORT, params=params, headers=demo.h(who))
    assert r.status_code == expect, r.text
    return r


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def put_material(demo: Demo, who: str, number: str, material: str, status: str, version: int) -> dict[str, Any]:
    r = demo.client.put(f"/api/v1/cases/{number}/materials/{material}", json={"status": status},
                        headers=demo.h(who, **{"If-Match": f'"{version}"'}))
    assert r.status_code == 200, r.text
    return r.json()


def walk(demo: Demo) -> str:
    """收件 with a material missing → 一次性告知补正 → 补正完成 → 受理 → 现场踏勘 (特别程序) → 延期 →
    审核 → 审批 → 出证 → 送达办结, all at the Pudong counter."""
    partial = {k: v for k, v in ALL_GGCS.items() if k != "hygiene_report"}
    case = demo.create("陈静", "GGCSWSXK", partial, applicant=PERSON)
    n = case["number"]
    out = demo.fire("陈静", n, "request_supplement", case["version"], comment="请补交卫生检测或评价报告")
    out = put_material(demo, "陈静", n, "hygiene_report", "received", out["version"])
    out = demo.fire("陈静", n, "supplement_done", out["version"])
    out = demo.fire("陈静", n, "accept", out["version"])
    out = demo.fire("陈静", n, "start_inspection", out["version"], comment="经营场所需现场核查")
    r = demo.client.post(f"/api/v1/cases/{n}/extension", json={"reason": "现场踏勘需补充检测"},
                         headers=demo.h("陈静", **{"If-Match": f'"{out["version"]}"'}))
    assert r.status_code == 200, r.text
    out = demo.fire("陈静", n, "inspection_passed", r.json()["version"], comment="布局与平面图一致")
    for trigger in ("approve", "issue", "deliver"):
        out = demo.fire("陈静", n, trigger, out["version"])
    assert out["status"]["code"] == 11 and out["state"]["final"]
    return n


def flat(record: dict[str, Any], path: str) -> str:
    """What the CSV cell of ``path`` must hold for this JSON record."""
    return exchange._cell(record, path)


def test_walk_exported_as_json_and_csv_field_by_field(demo: Demo) -> None:
    account(demo, "省平台", ["exchange"])
    n = walk(demo)
    case = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("陈静")).json()
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("陈静")).json()["items"]
    moves = [e for e in events if e["kind"] == "transition"]
    by_trigger = {e["trigger"]: e for e in moves}

    body = export(demo, "省平台").json()
    assert [r["case_number"] for r in body["items"]] == [n] and body["next_cursor"] == body["items"][0]["cursor"]
    rec = body["items"][0]
    assert rec["version"] == case["version"] and instant(rec["changed_at"]) == instant(case["updated_at"])
    assert rec["changed_at"].endswith("+08:00")  # the standard's times are local (Beijing) time

    # 办事申请 (表5)
    app = rec["application"]
    assert app["case_number"] == n and app["implementation_code"] == "GGCSWSXK"
    assert app["item_name"] == case["item"]["name"] == "公共场所卫生许可"
    assert app["item_version"] == case["item"]["version"]
    assert (app["item_type_code"], app["item_type"]) == ("01", "行政许可")
    assert (app["case_type_code"], app["case_type"]) == ("2", "承诺件")
    assert (app["applicant_type_code"], app["applicant_type"]) == ("1", "自然人")
    assert app["applicant_name"] == case["applicant"]["name"] == PERSON["name"]
    assert (app["applicant_id_type_code"], app["applicant_id_type"]) == ("111", "居民身份证")
    assert app["applicant_id_number"] == case["applicant"]["id_number"] == CITIZEN_ID
    assert app["contact_phone"] == PERSON["phone"] and app["address"] == PERSON["address"]
    assert case["mode"] == app["mode"] == "全程网办" and app["mode_code"] == "1"
    assert (app["source_code"], app["source"]) == ("2", "电脑端网上办理")
    assert instant(app["applied_at"]) == instant(case["created_at"])
    assert app["region_code"] == app["competent_region_code"] == "310115"
    assert app["intake_counter"] == case["intake_counter"] and app["competent_counter"] == case["competent_counter"]
    assert app["intake_unit"] == app["competent_unit"] == "浦东新区行政审批服务局"
    assert (app["status_code"], app["status"]) == (case["status"]["code"], case["status"]["label"])
    assert app["status_code"] == 11 and app["status"] == "办结(通过)"

    # 事项受理 (表6)
    acc = rec["acceptance"]
    accepted = instant(by_trigger["accept"]["at"])
    assert instant(acc["accepted_at"]) == instant(case["deadlines"]["accepted_at"]) == accepted
    assert acc["clerk"] == by_trigger["accept"]["actor_name"] == "陈静"
    assert acc["unit_name"] == "浦东新区行政审批服务局" and acc["region_code"] == "310115"
    assert acc["promised_due"] == case["deadlines"]["promised"] and acc["legal_due"] == case["deadlines"]["legal"]
    assert (acc["case_type_code"], acc["unit_credit_code"], acc["document_number"]) == ("2", None, None)

    # 事项办理 (表7): one finished step per transition, in order, each from the state it left
    steps = rec["steps"]
    assert [s["seq"] for s in steps] == [e["seq"] for e in moves]
    assert [s["step_name"] for s in steps] == ["已接件", "补齐补正", "已接件", "已受理", "现场踏勘", "审核",
                                               "审批通过(待出证)", "已出证(待送达)"]
    assert [s["action"] for s in steps] == ["退回", "通过", "通过", "通过", "通过", "通过", "通过", "通过"]
    assert [s["action_label"] for s in steps][:2] == ["一次性告知补正", "补正完成"]
    previous = instant(case["created_at"])
    for step, ev in zip(steps, moves, strict=True):
        assert step["handler"] == ev["actor_name"] and step["opinion"] == ev["comment"]
        assert instant(step["ended_at"]) == instant(ev["at"]) and instant(step["started_at"]) == previous
        assert (step["status_code"], step["status"]) == ("2", "已办") and step["unit_name"] == "浦东新区行政审批服务局"
        previous = instant(ev["at"])
    # 特别程序: the inspection (种类 2) and the 延期 (种类 1 延长审批), by start
    special = {s["kind_code"]: s for s in rec["special_procedures"]}
    assert len(rec["special_procedures"]) == 2
    inspection = special["2"]
    assert inspection["kind"] == "现场踏勘" and inspection["reason"] == "经营场所需现场核查"
    assert instant(inspection["started_at"]) == instant(by_trigger["start_inspection"]["at"])
    assert instant(inspection["ended_at"]) == instant(by_trigger["inspection_passed"]["at"])
    assert inspection["result"] == "踏勘通过" and inspection["opinion"] == "布局与平面图一致"
    assert inspection["handler"] == inspection["applicant"] == "陈静"
    extension = special["1"]
    ext_event = next(e for e in events if e["kind"] == "extension")
    assert extension["kind"] == "延长审批" and extension["reason"] == "现场踏勘需补充检测"
    assert instant(extension["started_at"]) == instant(ext_event["at"])
    assert case["deadlines"]["legal"] in extension["result"] and "10 个工作日" in extension["result"]
    # 补正 (an extension of the standard's sets)
    [supplement] = rec["supplements"]
    assert supplement["reason"] == "请补交卫生检测或评价报告" and supplement["notified_by"] == "陈静"
    assert instant(supplement["notified_at"]) == instant(by_trigger["request_supplement"]["at"])
    assert instant(supplement["completed_at"]) == instant(by_trigger["supplement_done"]["at"])

    # 事项办结 (表8)
    done = rec["completion"]
    assert instant(done["finished_at"]) == instant(case["finished_at"]) == instant(by_trigger["deliver"]["at"])
    assert done["handler"] == by_trigger["deliver"]["actor_name"] and done["result"] == "办结(通过): 办结"
    assert done["region_code"] == "310115" and done["mailed"] == "0" and done["charged"] is None
    assert done["certificate_number"] is None  # no job ran: no certificate was issued here
    assert rec["evaluations"] == []

    # CSV: the same record, one row, the header in 中文名(code)
    r = export(demo, "省平台", format="csv")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert rows[0] == exchange.header() and len(rows) == 2
    assert all(re.fullmatch(r"[\u4e00-\u9fff/]+\([a-z_.]+\)", cell) for cell in rows[0])
    row = dict(zip(rows[0], rows[1], strict=True))
    for code, zh in exchange.COLUMNS:
        assert row[f"{zh}({code})"] == flat(rec, code), code
    assert row["办件编号(case_number)"] == n and row["申请者证件号码(application.applicant_id_number)"] == CITIZEN_ID
    assert row["办件状态代码(application.status_code)"] == "11"
    assert row["受理单位统一社会信用代码(acceptance.unit_credit_code)"] == ""
    assert json.loads(row["办理环节(steps)"]) == steps


def test_changed_cases_reappear_unchanged_ones_do_not(demo: Demo) -> None:
    account(demo, "省平台", ["exchange"])
    numbers = [demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"] for _ in range(3)]
    first = export(demo, "省平台").json()
    assert [r["case_number"] for r in first["items"]] == numbers
    cursor = first["next_cursor"]
    assert export(demo, "省平台", after=cursor).json() == {"items": [], "next_cursor": cursor}
    demo.fire("陈静", numbers[1], "accept")
    again = export(demo, "省平台", after=cursor).json()
    assert [r["case_number"] for r in again["items"]] == [numbers[1]]
    assert again["items"][0]["application"]["status_code"] == 3 and again["items"][0]["acceptance"]
    assert export(demo, "省平台", after=again["next_cursor"]).json()["items"] == []
    # Paging: a full page links to the next; following the links yields each case once, in order.
    seen, url = [], f"{EXPORT}?limit=2"
    while url:
        settle(demo.engine)
        r = demo.client.get(url, headers=demo.h("省平台"))
        assert r.status_code == 200
        seen += [x["case_number"] for x in r.json()["items"]]
        link = r.headers.get("link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else ""
    assert seen == [numbers[0], numbers[2], numbers[1]]
    # A cursor the server never issued in its form is refused, naming the parameter.
    bad = export(demo, "省平台", expect=422, after="yesterday").json()
    assert bad["errors"][0]["field"] == "query.after"


def test_role_check_supervisor_scope_and_the_export_log(demo: Demo) -> None:
    account(demo, "省平台", ["exchange"])
    account(demo, "浦东督查", ["supervisor"], regions=["310115"])
    pudong = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=PERSON)["number"]
    jinan = demo.create("王芳", "GGCSWSXK", ALL_GGCS)["number"]
    # A counter clerk may not export at all: 403 problem details naming the roles that may.
    r = export(demo, "陈静", expect=403)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["missing"] == ["role:exchange|supervisor"]
    assert demo.client.get(EXPORT).status_code == 401
    assert demo.count("exchange_exports") == 0
    # The supervisor sees the cases of her region, without the applicants' personal data.
    items = export(demo, "浦东督查").json()["items"]
    assert [r["case_number"] for r in items] == [pudong]
    app = items[0]["application"]
    assert app["applicant_name"] == "张**" and app["applicant_id_number"] is None
    assert app["contact_phone"] is None and app["address"] is None
    # The exchange account gets every case, with them.
    full = export(demo, "省平台").json()["items"]
    assert [r["case_number"] for r in full] == [pudong, jinan]
    assert full[0]["application"]["applicant_id_number"] == CITIZEN_ID
    with demo.engine.connect() as conn:
        log = [dict(r) for r in conn.execute(sa.select(T_EXPORT).order_by(T_EXPORT.c.id)).mappings()]
    assert [(e["actor_name"], e["channel"], e["personal"], e["numbers"], e["count"]) for e in log] == [
        ("浦东督查", "api", False, [pudong], 1), ("省平台", "api", True, [pudong, jinan], 2)]
    assert log[0]["scope"] == {"regions": ["310115"]} and log[1]["scope"] is None
    with session_scope(demo.engine, readonly=True) as s:
        assert [e["actor_name"] for e in exchange.exports(s, jinan)] == ["省平台"]
        clerk = s.execute(sa.select(Clerk).where(Clerk.name == "省平台")).scalar_one()
    assert log[1]["clerk_id"] == clerk.id and clerk.counter_id is None and clerk.roles == "exchange"


def test_the_exchange_role_is_an_account_role_items_cannot_name(demo: Demo) -> None:
    from states.vocabulary import ACTOR_ROLES

    assert "exchange" not in ACTOR_ROLES  # no item transition can be given to an integration account
    with session_scope(demo.engine) as s, pytest.raises(Exception, match="未知或不可分配"):
        add_clerk(s, "x", None, ["exchnage"], 30)


@pytest.mark.dialect  # its PostgreSQL case stays in the quick run: commit order is what it is about
def test_no_case_is_skipped_when_writers_commit_out_of_order_on_postgresql(demo: Demo) -> None:
    if demo.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: commit order is the change order")
    account(demo, "省平台", ["exchange"])
    # Two counters of two units: acceptances at one unit wait for each other (its 受理通知书 numbers
    # are gap-free), so the writers must not share one.
    x = demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"]
    y = demo.create("李强", "GGCSWSXK", ALL_GGCS)["number"]
    start = export(demo, "省平台").json()["next_cursor"]
    # Writer A changes X first and has not committed yet; writer B changes Y later and commits.
    with session_scope(demo.engine) as a:
        advance(a, x, "accept", demo.actor("陈静"), {})
        with session_scope(demo.engine) as b:
            advance(b, y, "accept", demo.actor("李强"), {})
        # A reader now must not hand out Y: X may still commit behind it.
        held = export(demo, "省平台", wait=False, after=start).json()
        assert held == {"items": [], "next_cursor": start}
    after = export(demo, "省平台", after=start).json()
    changed = {r["case_number"]: r for r in after["items"]}
    assert set(changed) == {x, y}
    # An updated_at cursor would have lost X: it was stamped before Y but committed after it.
    assert instant(changed[x]["changed_at"]) <= instant(changed[y]["changed_at"])


def test_concurrent_writers_every_change_is_exported(demo: Demo) -> None:
    """Writers on three threads toggle materials while a reader pages on: every case's last
    exported version is its final one, and no case's versions ever go backwards in the stream."""
    account(demo, "省平台", ["exchange"])
    numbers = [demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"] for _ in range(3)]
    chen = demo.actor("陈静")
    reader = Actor(None, "省平台", None, None, frozenset({"exchange"}))
    errors: list[BaseException] = []

    def write(number: str) -> None:
        try:
            for i in range(12):
                with session_scope(demo.engine) as s:
                    intake.set_material(s, number, chen, "hygiene_report", "missing" if i % 2 == 0 else "received")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in numbers]
    for t in writers:
        t.start()
    seen: dict[str, list[int]] = {}
    cursor = exchange.START

    def drain() -> None:
        nonlocal cursor
        with session_scope(demo.engine, readonly=True) as s:
            page = exchange.export_page(s, reader, cursor, 2)
        for r in page.items:
            seen.setdefault(r["case_number"], []).append(r["version"])
        cursor = page.next_cursor

    while any(t.is_alive() for t in writers):
        drain()
    for t in writers:
        t.join()
    assert not errors, errors
    settle(demo.engine)
    for _ in range(20):
        drain()
    with demo.engine.connect() as conn:
        final = dict(conn.execute(sa.text("SELECT number, version FROM cases")).all())
    for n in numbers:
        assert seen[n][-1] == final[n] == 1 + 12, (n, seen[n])
        assert seen[n] == sorted(set(seen[n])), seen[n]


@pytest.mark.slow
def test_cli_export_json_and_csv_incrementally(sqlite_demo: Demo, tmp_path: Path) -> None:
    demo = sqlite_demo
    numbers = [demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=PERSON)["number"] for _ in range(2)]
    env = {"TONGBAN_DATABASE_URL": str(demo.engine.url), "TONGBAN_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "exchange", "export", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    out = tmp_path / "cases.csv"
    done = cli("--format", "csv", "--out", str(out))
    assert done.returncode == 0, done.stderr
    cursor = re.search(r"下次续传: --after ([0-9]+-[0-9]+)", done.stdout).group(1)
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["办件编号(case_number)"] for r in rows] == numbers
    assert rows[0]["申请者证件号码(application.applicant_id_number)"] == CITIZEN_ID
    assert rows[-1]["续传游标(cursor)"] == cursor
    # Nothing changed: an empty export, the same cursor.
    again = cli("--after", cursor, "--format", "json", "--out", str(tmp_path / "none.json"))
    assert again.returncode == 0 and f"--after {cursor}" in again.stdout
    assert json.loads((tmp_path / "none.json").read_text(encoding="utf-8")) == {"items": [], "next_cursor": cursor}
    demo.fire("陈静", numbers[0], "accept")
    third = cli("--after", cursor, "--out", str(tmp_path / "changed.json"))
    changed = json.loads((tmp_path / "changed.json").read_text(encoding="utf-8"))
    assert third.returncode == 0 and [r["case_number"] for r in changed["items"]] == [numbers[0]]
    bad = cli("--after", "nonsense", "--out", str(tmp_path / "x.json"))
    assert bad.returncode == 1 and "--after" in bad.stderr and not (tmp_path / "x.json").exists()
    with demo.engine.connect() as conn:
        log = conn.execute(sa.select(T_EXPORT.c.channel, T_EXPORT.c.format, T_EXPORT.c.count,
                                     T_EXPORT.c.personal, T_EXPORT.c.actor_name)).all()
    assert [(c, f, n, p) for c, f, n, p, _ in log] == [("cli", "csv", 2, True), ("cli", "json", 0, True),
                                                        ("cli", "json", 1, True)]
    assert all(name.startswith("命令行") for *_, name in log)


def test_docs_describe_every_column() -> None:
    doc = (ROOT / "docs" / "api" / "exchange.md").read_text(encoding="utf-8")
    for code, zh in exchange.COLUMNS:
        key = code.split(".")[-1]
        assert f"`{key}`" in doc and zh in doc, code


@pytest.mark.slow
def test_schemathesis_on_the_export_with_an_exchange_token(sqlite_demo: Demo) -> None:
    """The fuzz run (tests/test_api_fuzz.py) calls it as a counter clerk, who gets 403; here the
    200 answers themselves are checked against the schema: JSON and CSV, full pages and empty."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import CHECKS, load_all_checks

    demo = sqlite_demo
    token = account(demo, "省平台", ["exchange"])
    for _ in range(3):
        demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=PERSON)
    load_all_checks()
    checks = CHECKS.get_all()
    op = schemathesis.openapi.from_asgi("/openapi.json", demo.client.app)["/api/v1/exchange/cases"]["GET"]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)

        run()
    with session_scope(demo.engine, readonly=True) as s:
        assert authenticate(s, token).roles == frozenset({"exchange"})
