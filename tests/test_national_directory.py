"""The national-size directory bench/bench_national.py loads: drawn by bench/national_directory.py,
checked and imported the product's way, and able to route a case across provinces."""

from __future__ import annotations

import sqlalchemy as sa
import yaml
from sqlmodel import Session

from bench import national_directory
from engine import seals
from engine.actors import authenticate
from engine.advance import advance
from engine.demo import publish_catalog
from engine.directory_manage import check_text, import_directory
from engine.intake import create_case
from states import yamlpos
from storage.db import session_scope
from storage.tables import Case, Clerk, Counter, Region
from tests.conftest import CATALOG, answers_for, run_jobs

MATERIALS = {m: "received" for m in ("application_form", "legal_rep_id", "floor_plans", "hygiene_report",
                                     "hygiene_rules")}


def test_the_generated_alliance_has_28_provinces_and_about_600_counters() -> None:
    doc = national_directory.document()
    provinces = {r["code"][:2] for r in doc["regions"]}
    assert len(provinces) == 28 and not provinces & {"54", "63", "64"}
    assert all(len(r["code"]) == 6 and r["code"].isdigit() for r in doc["regions"])
    assert {"370100", "370211", "440115", "310115", "510113"} <= {r["code"] for r in doc["regions"]}
    kinds = [c["kind"] for c in doc["counters"]]
    assert 580 <= len(kinds) <= 650 and {"staffed", "self_service", "guide_only"} == set(kinds)
    assert len(doc["units"]) >= 500
    # Bigger than an item definition may be: the directory has its own node budget.
    assert national_directory.text().count("\n") > yamlpos.MAX_NODES // 2
    assert national_directory.text() == national_directory.text()  # deterministic: one content hash


def test_it_imports_once_and_routes_a_case_from_jinan_to_qingbaijiang(sqlite_db: sa.Engine) -> None:
    """The import takes 7–20 s (a row at a time through the ORM): one database keeps the generator honest."""
    checked = check_text(national_directory.text(), "national.yaml")
    with session_scope(sqlite_db) as s:
        publish_catalog(s, CATALOG)
        first = import_directory(s, checked, "bench", token_days=1)
    with session_scope(sqlite_db) as s:
        again = import_directory(s, checked, "bench", token_days=1)
    assert first.changed and not again.changed and again.version == first.version == 1
    doc = checked.document
    with Session(sqlite_db) as s:
        count = lambda table: s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()  # noqa: E731
        assert count(Region) == len(doc["regions"]) == 333
        assert count(Counter) == len(doc["counters"])
        assert count(Clerk) == len(doc["clerks"]) == len(first.tokens)
    token = {(t["name"], t["counter"]): t["token"] for t in first.tokens}
    intake = authenticate(sqlite_db, token[("济南收件员", "c370100-kuayu")])
    decider = authenticate(sqlite_db, token[("青白江审批员", "c510113-kuayu")])
    with session_scope(sqlite_db) as s:
        case, _ = create_case(s, intake, "GGCSWSXK", {"name": "成都某某酒店管理有限公司", "kind": "person",
                                                       "phone": "13700137000", "address": "成都市青白江区大同路 1 号"},
                              MATERIALS, competent_region="510113", situation=answers_for("GGCSWSXK", MATERIALS))
        advance(s, case["number"], "accept", intake)
        for unit in ("u370100-shenpi", "u510113-shenpi"):  # each signs its notices
            seals.ensure(s, unit)
    run_jobs(sqlite_db)
    with session_scope(sqlite_db) as s:
        advance(s, case["number"], "start_review", decider)  # in 青白江's hands now
    with Session(sqlite_db) as s:
        row = s.execute(sa.select(Case).where(Case.number == case["number"])).scalar_one()
    assert row.state == "review"
    assert yaml.safe_load(national_directory.text())["regions"][0] == {"code": "110101", "name": "北京市东城区"}
