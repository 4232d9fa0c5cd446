"""Every item's guide is complete and tells the truth: for every 情形 answer (each option at least
once, every pair of options of two questions together) the one-time list (一次性告知) is exactly
what intake takes and 受理 requires; every blank form and sample a guide links is a PDF that
answers; every guide answers the common questions (收费? 多久? 能否代办? 异地能否办?) from the
item's own limits, fees, modes and materials."""

from __future__ import annotations

import itertools
import re
import subprocess
from typing import Any

import pytest
from conftest import Demo, certificate_data, run_jobs
from test_every_path import routes

from core.settings import ROOT
from engine import situations
from engine.actors import add_clerk
from engine.catalog import read_catalog
from engine.guide import read_guides
from states.schema import ItemDefinition
from storage.db import session_scope

DEFS: dict[str, ItemDefinition] = {i.definition.code: i.definition for i in read_catalog(ROOT / "catalog" / "items")}
GUIDES = read_guides(ROOT / "catalog" / "guides").texts
APPLICANT = {"name": "某某有限公司", "kind": "company", "id_number": "91370100MA3C4K2L43",
             "phone": "13800138000", "address": "山东省济南市历下区经十路 100 号"}
# What an applicant fills in (and so needs a blank form and a sample): the material's name ends so.
FILLED = ("申请书", "申请表", "登记表", "备案表", "承诺书")


def pairwise(d: ItemDefinition) -> list[dict[str, str]]:
    """Answer sets covering every option of every question and every pair of options of two
    questions (greedy over the full product, which is small for the catalog's items)."""
    questions = [(q.id, [o.id for o in q.options]) for q in d.situations]
    if not questions:
        return [{}]
    wanted = {((q, o),) for q, options in questions for o in options}
    wanted |= {((q1, o1), (q2, o2)) for (q1, os1), (q2, os2) in itertools.combinations(questions, 2)
               for o1 in os1 for o2 in os2}

    def covers(answers: dict[str, str]) -> set[tuple[tuple[str, str], ...]]:
        chosen = list(answers.items())  # in the questions' order, as the product makes them
        return {(c,) for c in chosen} | set(itertools.combinations(chosen, 2))

    product = [dict(zip([q for q, _ in questions], combo, strict=True))
               for combo in itertools.product(*[options for _, options in questions])]
    out: list[dict[str, str]] = []
    while wanted:
        best = max(product, key=lambda a: len(covers(a) & wanted))
        out.append(best)
        wanted -= covers(best)
    return out


CASES = [(code, answers) for code, d in DEFS.items() for answers in pairwise(d)]


def test_the_answer_sets_cover_every_option_and_pair() -> None:
    d = DEFS["SPJYXK"]  # 3 × 2 × 2 options: 12 combinations, 6 cover every pair
    sets = pairwise(d)
    assert len(sets) < 12
    for q1, q2 in itertools.combinations(d.situations, 2):
        for o1, o2 in itertools.product(q1.options, q2.options):
            assert any(a[q1.id] == o1.id and a[q2.id] == o2.id for a in sets), (q1.id, o1.id, q2.id, o2.id)


def test_every_item_asks_its_questions() -> None:
    for code, d in DEFS.items():
        assert d.situations, f"{code} asks no 情形 question"
        for q in d.situations:
            assert len({o.id for o in q.options}) == len(q.options) >= 2


@pytest.fixture
def intake(demo: Demo) -> dict[str, tuple[str, str | None]]:
    """item → (the name of a clerk at the counter that takes it in, the competent region when
    another counter decides it); the clerks are added to ``demo.tokens``."""
    out = {}
    with session_scope(demo.engine) as s:
        for code, (counter, region) in routes(demo).items():
            name = f"收件·{counter}"
            if name not in demo.tokens:
                _clerk, demo.tokens[name] = add_clerk(s, name, counter, ["clerk"], 30)
            out[code] = (name, region)
    return out


def _guarded(d: ItemDefinition) -> str:
    """The first step out of intake that requires the materials (受理, 移交, 当场办结 …)."""
    initial = d.states[0].id
    return next(t.trigger for t in d.transitions if initial in t.source and "required_materials" in t.guards)


def _create(demo: Demo, who: str, region: str | None, code: str, answers: dict[str, str],
            materials: dict[str, str]) -> Any:
    body: dict[str, Any] = {"item_code": code, "applicant": APPLICANT, "situation": answers, "materials": materials}
    if region:
        body["competent_region"] = region
    return demo.client.post("/api/v1/cases", json=body, headers=demo.h(who))


def test_the_one_time_list_is_what_intake_takes_and_acceptance_requires(
        demo: Demo, intake: dict[str, tuple[str, str | None]]) -> None:
    for code, answers in CASES:
        d = DEFS[code]
        who, region = intake[code]
        what = f"{code} {answers}"
        params = {"situation": [f"{q}:{o}" for q, o in answers.items()]}
        guide = demo.client.get(f"/api/v1/guide/{code}", params=params)
        assert guide.status_code == 200, (what, guide.text)
        listed = [m["id"] for m in guide.json()["materials"]]
        assert listed == [m.id for m in situations.selected_materials(d, answers)], what
        required = [m for m in d.materials if m.id in listed and m.required and m.library is None]
        left_out = required[-1]
        # Every listed material but one: the case holds exactly the listed ones, and the first step
        # out of intake is refused naming the one left out; nothing moves.
        r = _create(demo, who, region, code, answers,
                    {m: "received" for m in listed if m != left_out.id})
        assert r.status_code == 201, (what, r.text)
        case = r.json()
        view = demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h(who)).json()
        assert [m["id"] for m in view["materials"]] == listed, what
        trigger = _guarded(d)
        refused = demo.fire(who, case["number"], trigger, case["version"], expect=409,
                            **certificate_data(view, trigger))  # an approver's data: only the material is missing
        assert refused["type"] == "/problems/guard-failed", what
        reasons = [g["reason"] for g in refused["guards"]]
        assert reasons == [f"缺少必要材料: {left_out.name}"], (what, reasons)
        again = demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h(who)).json()
        assert again["version"] == case["version"] and again["state"]["id"] == d.states[0].id, what
        # Everything listed: the step is open.
        r = _create(demo, who, region, code, answers, dict.fromkeys(listed, "received"))
        assert r.status_code == 201, (what, r.text)
        step = next(t for t in r.json()["triggers"] if t["trigger"] == trigger)
        assert step["open"], (what, step)


def test_intake_refuses_a_material_the_answers_do_not_list(
        demo: Demo, intake: dict[str, tuple[str, str | None]]) -> None:
    for code, d in DEFS.items():
        who, region = intake[code]
        for q in d.situations:
            for o in q.options:
                answers = {x.id: (o.id if x.id == q.id else x.options[0].id) for x in d.situations}
                listed = {m.id for m in situations.selected_materials(d, answers)}
                extra = next((m for other in q.options if other.id != o.id for m in other.materials
                              if m not in listed), None)
                if extra is None:
                    continue
                before = demo.count("cases")
                r = _create(demo, who, region, code, answers, {extra: "received"})
                assert r.status_code == 422, (code, answers, r.text)
                assert r.json()["errors"][0] == {"field": f"materials.{extra}", "reason": "所选情形不需要此材料"}
                assert demo.count("cases") == before


def test_every_form_a_guide_links_is_a_pdf_that_answers(demo: Demo) -> None:
    for code, d in DEFS.items():
        g = demo.client.get(f"/api/v1/guide/{code}").json()
        for m in d.materials:
            if m.name.endswith(FILLED):
                assert m.blank_form and m.sample, f"{code} {m.name}: the applicant fills it, no form or sample"
        urls = [f["url"] for f in g["files"]]
        urls += [u for m in g["materials"] for u in (m["blank_form_url"], m["sample_url"]) if u]
        assert urls, code
        for url in set(urls):
            r = demo.client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            assert r.headers["content-type"].startswith("application/pdf") and r.content.startswith(b"%PDF"), url
        page = demo.client.get(f"/guide/{code}")
        assert page.status_code == 200
        for f in g["files"]:
            assert f'href="{f["url"]}"' in page.text, (code, f["name"])


MODES = ("全程网办", "异地代收代办", "多地联办")


@pytest.mark.parametrize("code", sorted(DEFS))
def test_every_guide_answers_the_common_questions_from_the_item(code: str) -> None:
    d, g = DEFS[code], GUIDES[code]
    assert len(g.faq) >= 4, code
    asked = " ".join(f.q for f in g.faq)
    assert "收费" in asked, code
    limits = {d.limits.legal_days, d.limits.promised_days, d.limits.extension_days}
    agent = any("power_of_attorney" in o.materials for q in d.situations for o in q.options)
    for f in g.faq:
        if "收费" in f.q:
            assert f.a.startswith(g.fees), (code, f.a)
        for days in re.findall(r"(\d+) 个工作日", f.a):
            assert int(days) in limits, (code, f.a, limits)
        if "即办" in f.a:
            assert d.case_type == "即办件", (code, f.a)
        if "代办" in f.q or "委托" in f.q:
            assert agent and "授权委托书" in f.a, (code, f.a)
        if "异地" in f.q:
            assert f.a.startswith("能") == ("异地代收代办" in d.modes), (code, f.a)
        for mode in MODES:
            if mode in f.a and f"不能{mode}" not in f.a:
                assert mode in d.modes, (code, mode, f.a)
    if agent:
        assert any("授权委托书" in f.a for f in g.faq), f"{code}: no FAQ says what an agent brings"


def _pdf_text(demo: Demo, who: str, number: str, kind: str) -> str:
    listed = demo.client.get(f"/api/v1/cases/{number}/documents", headers=demo.h(who)).json()["items"]
    [doc] = [d for d in listed if d["kind"] == kind]
    data = demo.client.get(doc["content_url"], headers=demo.h(who)).content
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()
    return "".join(text.split())


def test_notices_list_the_materials_of_the_answers_only(demo: Demo, objects: None) -> None:
    """An applicant who came in person, with no 集中空调 and a new licence: neither the 收件凭证
    nor the 补正通知 (without ticks: every required material not received) names the 授权委托书,
    the 集中空调 report or the old licence they were never asked for."""
    answers = {"application_kind": "new", "aircon": "absent", "agent": "self"}
    listed = [m.id for m in situations.selected_materials(DEFS["GGCSWSXK"], answers)]
    case = demo.create("王芳", "GGCSWSXK", {m: "received" for m in listed if m != "floor_plans"}, situation=answers)
    drawing = demo.client.post(f"/api/v1/cases/{case['number']}/documents/receipt/drawing", headers=demo.h("王芳"))
    assert drawing.status_code == 202, drawing.text  # 出具 at the counter, before the case leaves intake
    demo.fire("王芳", case["number"], "request_supplement", case["version"], comment="请补交平面图")
    run_jobs(demo.engine)
    never = ("授权委托书", "集中空调通风系统", "原公共场所卫生许可证")
    receipt = _pdf_text(demo, "王芳", case["number"], "receipt")
    assert "地址方位示意图" in receipt and not [w for w in never if w in receipt]
    notice = _pdf_text(demo, "王芳", case["number"], "supplement")
    assert "地址方位示意图" in notice and not [w for w in never if w in notice]
    assert "卫生管理制度" not in notice  # received: not asked for again
    # Came with an agent: the 授权委托书 is the case's, and listed.
    agent = demo.create("王芳", "GGCSWSXK", dict.fromkeys(listed, "received"), situation={**answers, "agent": "agent"})
    demo.fire("王芳", agent["number"], "request_supplement", agent["version"], comment="请补交授权委托书")
    run_jobs(demo.engine)
    assert "授权委托书" in _pdf_text(demo, "王芳", agent["number"], "supplement")
