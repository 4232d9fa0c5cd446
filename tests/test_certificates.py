"""Certificates that carry their data, the bundle's certificates from two units, the certificate
library (电子证照库) with 免提交 and revocation, and links where the product is served.

Each walk runs the job handlers themselves (conftest.run_jobs) and reads the PDF's text with
poppler's pdftotext: what a person would read on the printed certificate."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_FGS, ALL_GGCS, Demo, page_login, run_jobs
from fastapi.testclient import TestClient
from test_scans import jpeg

from core import clock
from core.settings import Settings, listening_url
from engine import certificates, idcodes, seals
from storage.db import session_scope
from storage.flow_tables import Certificate

BEIJING = ZoneInfo("Asia/Shanghai")
# The branch registered in 青岛西海岸新区 (a well-formed code: both check characters right).
BRANCH_CODE = idcodes.make_credit_code("9137021106133841")
BRANCH = {"name": "青岛某某贸易有限公司黄岛分公司", "kind": "company", "id_number": BRANCH_CODE,
          "phone": "0532-86000000", "address": "山东省青岛市黄岛区长江中路 216 号"}
HEAD = {"company_type": "有限责任公司分公司(自然人投资或控股)", "head": "张建国",
        "head_id_number": "11010519491231002X", "established_on": "2019-03-18",
        "scope": "一般项目: 日用百货销售; 五金产品零售; 信息咨询服务(不含许可类信息咨询服务)。"}
SCHOOL = {"name": "浦东新区某某培训学校有限公司", "kind": "company", "phone": "021-58880000",
          "address": "上海市浦东新区张杨路 500 号 3 楼"}
SCHOOL_CODE = idcodes.make_credit_code("91310115MA1H8K2D")
EDUCATION = {"founder": "上海某某教育科技有限公司", "principal": "李文", "school_type": "营利性民办培训学校",
             "programmes": "文化艺术类培训 (非学科类)"}
MARKET = {"credit_code": SCHOOL_CODE, "company_type": "有限责任公司(自然人投资或控股的法人独资)",
          "legal_rep": "王明", "capital": "人民币 100 万元", "scope": "非学科类校外培训。"}


def certs(demo: Demo, number: str) -> list[Certificate]:
    with demo.engine.connect() as conn:
        case_id = conn.execute(sa.text("SELECT id FROM cases WHERE number = :n"), {"n": number}).scalar_one()
        rows = conn.execute(sa.select(Certificate).where(Certificate.case_id == case_id)
                            .order_by(Certificate.id)).all()
    return [Certificate(**r._mapping) for r in rows]


def pdf_text(demo: Demo, who: str, number: str, tmp_path: Path, unit_id: str | None = None) -> str:
    """The certificate's text; with ``unit_id``, its signature checked by pyHanko's validator first."""
    r = demo.client.get(f"/api/v1/certificates/{number}/pdf", headers=demo.h(who))
    assert r.status_code == 200, r.text
    if unit_id is not None:
        with session_scope(demo.engine, readonly=True) as s:
            report = seals.verify_pdf(r.content, s)
            assert report.valid and report.intact and report.unit_id == unit_id, report.reason
            changed = bytearray(r.content)
            changed[len(changed) // 3] ^= 0x01
            assert not seals.verify_pdf(bytes(changed), s).valid
    path = tmp_path / "c.pdf"
    path.write_bytes(r.content)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True)
    return out.stdout


def branch_licence(demo: Demo) -> str:
    """A 分公司负责人变更 taken in at 济南, approved at 青岛西海岸, its licence issued."""
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, applicant=BRANCH, competent_region="370211")
    n = case["number"]
    demo.fire("王芳", n, "forward")
    demo.fire("李强", n, "approve", data={"certificate": HEAD})
    run_jobs(demo.engine)
    return n


def test_the_approver_must_give_the_licence_data_and_nothing_is_written_without_it(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, applicant=BRANCH, competent_region="370211")
    n = case["number"]
    out = demo.fire("王芳", n, "forward")
    approve = next(t for t in demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("李强")).json()["triggers"]
                   if t["trigger"] == "approve")
    assert [f["id"] for f in approve["certificate_fields"]] == [
        "company_type", "head", "head_id_number", "established_on", "scope"]
    history = demo.count("history")
    r = demo.fire("李强", n, "approve", out["version"], expect=422, data=None)
    assert {e["field"] for e in r["errors"]} == {f"data.certificate.{k}" for k in HEAD}
    bad = {**HEAD, "head_id_number": "110105194912310021", "established_on": "2019-02-30", "extra": "x"}
    r = demo.fire("李强", n, "approve", out["version"], expect=422, data={"certificate": bad})
    reasons = {e["field"]: e["reason"] for e in r["errors"]}
    assert reasons == {"data.certificate.head_id_number": "公民身份号码校验码错误: 第 18 位应为 X",
                       "data.certificate.established_on": "「成立日期」须为日期 (YYYY-MM-DD)",
                       "data.certificate.extra": "证照没有此字段"}
    assert demo.count("history") == history and demo.count("outbox", job="issue_certificate") == 0
    after = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("李强")).json()
    assert after["version"] == out["version"] and after["state"]["id"] == "handling"


def test_an_application_without_the_licence_data_cannot_be_approved(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211",
                       applicant={"name": "某分公司", "kind": "company"})
    demo.fire("王芳", case["number"], "forward")
    r = demo.fire("李强", case["number"], "approve", expect=422, data={"certificate": HEAD})
    assert {e["field"] for e in r["errors"]} == {"applicant.id_number", "applicant.address"}


def test_intake_checks_the_applicants_code(demo: Demo) -> None:
    for applicant, reason in (({**BRANCH, "id_number": BRANCH_CODE[:-1] + "0"}, "校验码错误"),
                              ({"name": "张三", "kind": "person", "id_number": "110105194912310021"}, "校验码错误"),
                              ({"name": "张三", "kind": "person", "id_number": BRANCH_CODE}, "公民身份号码")):
        r = demo.client.post("/api/v1/cases", headers=demo.h("王芳"), json={
            "item_code": "FGSFZRBG", "applicant": applicant, "materials": ALL_FGS})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "applicant.id_number" and reason in r.json()["errors"][0]["reason"]
    assert demo.count("cases") == 0


def test_the_branch_licence_carries_the_new_head_code_premises_and_scope(demo: Demo, objects: None,
                                                                       tmp_path: Path) -> None:
    with clock.frozen(datetime(2026, 12, 2, 7, 30, tzinfo=BEIJING)):  # 23:30 UTC the day before
        n = branch_licence(demo)
    [cert] = certs(demo, n)
    year = 2026
    assert cert.number == f"青西审证〔{year}〕00001号" and cert.state == "issued"
    assert (cert.unit_id, cert.issuer_name, cert.issuer_code) == (
        "qdxh-shenpi", "青岛西海岸新区行政审批服务局", "11370211MB1936126L")
    assert (cert.cert_type, cert.holder, cert.holder_code, cert.holder_code_type) == (
        "营业执照", BRANCH["name"], BRANCH_CODE, "统一社会信用代码")
    assert cert.valid_until is None and str(cert.valid_from) == "2026-12-02"  # 长期, from the Beijing day
    values = {f["id"]: f["value"] for f in cert.data or []}
    assert values["head"] == "张建国" and values["premises"] == BRANCH["address"]
    assert values["head_id_number"] == HEAD["head_id_number"]  # recorded, not printed
    text = pdf_text(demo, "李强", cert.number, tmp_path, unit_id="qdxh-shenpi")
    flat = "".join(text.split())
    for shown in ("营业执照", cert.number, BRANCH_CODE, BRANCH["name"], "张建国", "长江中路216号",
                  "日用百货销售", "长期", "青岛西海岸新区行政审批服务局", "2026年12月02日"):
        assert shown.replace(" ", "") in flat, shown
    assert HEAD["head_id_number"] not in flat
    case = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("王芳")).json()
    assert case["state"]["id"] == "result_ready"  # 出证 fired; the result went back to 济南


def test_a_replayed_job_keeps_its_number_and_takes_no_other(demo: Demo, objects: None) -> None:
    from flows import jobs

    n = branch_licence(demo)
    with demo.engine.connect() as conn:
        job = conn.execute(sa.text("SELECT * FROM outbox WHERE job = 'issue_certificate'")).mappings().one()
    [before] = certs(demo, n)
    jobs.run(demo.engine, dict(job))  # type: ignore[arg-type]
    [after] = certs(demo, n)
    assert (after.number, after.sha256) == (before.number, before.sha256)
    second = branch_licence(demo)
    assert [c.number for c in certs(demo, second)] == [f"青西审证〔{clock.today().year}〕00002号"]


def test_the_bundle_issues_one_certificate_per_authority_released_together(demo: Demo, objects: None,
                                                                          tmp_path: Path) -> None:
    case = demo.create("陈静", "MBXXZZHB", {m: "received" for m in (
        "application", "founder_docs", "charter", "premises", "assets", "principal", "fire_safety")},
        applicant=SCHOOL)
    n = case["number"]
    demo.fire("陈静", n, "accept")
    r = demo.fire("吴磊", n, "market_approve", expect=422, data={"certificate": {**MARKET, "credit_code": "12345"}})
    assert r["errors"][0]["field"] == "data.certificate.credit_code"
    demo.fire("周敏", n, "education_approve", data={"certificate": EDUCATION})
    run_jobs(demo.engine)
    assert certs(demo, n) == []  # nothing before both have approved
    demo.fire("吴磊", n, "market_approve", data={"certificate": MARKET})
    run_jobs(demo.engine)
    school, business = certs(demo, n)
    assert (school.cert_key, school.unit_id, school.number, school.title) == (
        "school_licence", "pd-jiaoyu", f"浦教证〔{clock.today().year}〕00001号", "民办学校办学许可证")
    assert (business.cert_key, business.unit_id, business.number, business.title) == (
        "business_licence", "pd-shichang", f"浦市监证〔{clock.today().year}〕00001号", "营业执照")
    assert business.holder_code == SCHOOL_CODE and business.valid_until is None
    assert school.valid_until is not None and school.valid_until.year == school.valid_from.year + 5  # type: ignore[union-attr]
    assert school.job_id == business.job_id  # one job: issued together
    out = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("陈静")).json()
    assert out["state"]["id"] == "completed"
    flat = "".join(pdf_text(demo, "陈静", school.number, tmp_path, unit_id="pd-jiaoyu").split())
    assert "民办学校办学许可证" in flat and "浦东新区教育局" in flat and "文化艺术类培训" in flat
    flat = "".join(pdf_text(demo, "陈静", business.number, tmp_path, unit_id="pd-shichang").split())
    assert SCHOOL_CODE in flat and "浦东新区市场监督管理局" in flat and "王明" in flat


SHOP = {"name": "上海某某餐饮管理有限公司", "kind": "company", "id_number": SCHOOL_CODE, "phone": "021-58880001",
        "address": "上海市浦东新区世纪大道 100 号 1 层"}
SHOP_CODE = idcodes.make_credit_code("91310115MA1K3P7R")
RESTAURANT = {"credit_code": SHOP_CODE, "company_type": "有限责任公司(自然人独资)", "legal_rep": "赵六",
              "scope": "许可项目: 餐饮服务。", "food_category": "餐饮服务经营者(中型餐馆)",
              "food_items": "热食类食品制售; 冷食类食品制售"}


def _answered(demo: Demo, code: str) -> dict[str, Any]:
    """Each 情形 question answered with its first option, and every material that asks for received."""
    from engine import catalog, situations

    with session_scope(demo.engine, readonly=True) as s:
        d = catalog.compiled(s, catalog.latest_version(s, code).id).definition
    answers = {q.id: q.options[0].id for q in d.situations}
    return {"situation": answers, "materials": {m.id: "received" for m in situations.selected_materials(d, answers)}}


def _fields(cert: Certificate) -> dict[str, str]:
    return {f["label"]: f["value"] for f in cert.data or [] if f.get("printed", True)}


def test_the_restaurant_bundle_issues_the_business_and_the_food_licence_each_from_its_own_unit(
        demo: Demo, objects: None, tmp_path: Path) -> None:
    """开办餐饮店一件事: market regulation (登记机关) issues the 营业执照, 长期; the 行政审批服务局 the
    食品经营许可证, 5 years; each numbered and sealed by its unit, by one job, with the data entered once."""
    with clock.frozen(datetime(2026, 12, 2, 9, 0, tzinfo=BEIJING)):
        n = demo.create("陈静", "YJSKBCYD", **_answered(demo, "YJSKBCYD"), applicant=SHOP)["number"]
        demo.fire("陈静", n, "accept")  # no 公众聚集场所 (the first answer): no 消防 check to wait for
        market = next(t for t in demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("吴磊")).json()["triggers"]
                      if t["trigger"] == "market_approve")
        asked = [f["id"] for f in market["certificate_fields"]]
        assert sorted(asked) == sorted(RESTAURANT) and len(asked) == len(set(asked))  # shared fields asked once
        demo.fire("吴磊", n, "market_approve", data={"certificate": RESTAURANT})
        run_jobs(demo.engine)
    business, food = certs(demo, n)
    assert (business.cert_key, business.title, business.unit_id, business.issuer_name, business.number) == (
        "business_licence", "营业执照", "pd-shichang", "浦东新区市场监督管理局", "浦市监证〔2026〕00001号")
    assert (food.cert_key, food.title, food.unit_id, food.issuer_name, food.number) == (
        "food_licence", "食品经营许可证", "pd-shenpi", "浦东新区行政审批服务局", "浦审证〔2026〕00001号")
    assert business.job_id == food.job_id and business.state == food.state == "issued"
    assert (business.valid_from, business.valid_until) == (date(2026, 12, 2), None)  # 长期
    assert (food.valid_from, food.valid_until) == (date(2026, 12, 2), date(2031, 12, 2))  # 5 years
    assert business.holder == food.holder == SHOP["name"] and business.holder_code == food.holder_code == SHOP_CODE
    assert _fields(business) == {
        "统一社会信用代码": SHOP_CODE, "名称": SHOP["name"], "类型": "有限责任公司(自然人独资)",
        "法定代表人（经营者）": "赵六", "经营场所": SHOP["address"], "成立日期": "2026-12-02",
        "经营范围": "许可项目: 餐饮服务。"}
    assert _fields(food) == {
        "经营者名称": SHOP["name"], "统一社会信用代码": SHOP_CODE, "法定代表人（负责人）": "赵六",
        "经营场所": SHOP["address"], "主体业态": "餐饮服务经营者(中型餐馆)",
        "经营项目": "热食类食品制售; 冷食类食品制售"}
    assert demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("陈静")).json()["state"]["id"] == "completed"
    flat = "".join(pdf_text(demo, "陈静", business.number, tmp_path, unit_id="pd-shichang").split())
    assert all(w in flat for w in ("营业执照", SHOP_CODE, "赵六", "营业期限：长期",
                                   "登记机关：浦东新区市场监督管理局")), flat
    flat = "".join(pdf_text(demo, "陈静", food.number, tmp_path, unit_id="pd-shenpi").split())
    assert all(w in flat for w in ("食品经营许可证", "热食类食品制售", "2026年12月02日至2031年12月02日",
                                   "发证机关：浦东新区行政审批服务局")), flat


@pytest.mark.parametrize(("code", "expected"), [
    ("GTGSHSLDJ", {"统一社会信用代码": "CREDIT", "名称": "济南市历下区张记餐饮店", "类型": "个体工商户",
                   "经营者": "测试申请人", "组成形式": "个人经营", "经营场所": "山东省济南市历下区经十路 100 号",
                   "注册日期": "2026-12-02", "经营范围": "日用百货销售"}),
    ("YXGSSLDJ", {"统一社会信用代码": "CREDIT", "名称": "测试申请人", "类型": "有限责任公司分公司",
                  "法定代表人": "王明", "注册资本": "人民币 100 万元", "成立日期": "2026-12-02",
                  "住所": "山东省济南市历下区经十路 100 号", "经营范围": "日用百货销售"}),
])
def test_a_registration_issues_a_business_licence_with_its_data_for_the_long_term(
        demo: Demo, objects: None, tmp_path: Path, code: str, expected: dict[str, str]) -> None:
    """个体工商户 / 有限责任公司 设立登记: the 营业执照 states what was registered (the credit code the
    registration authority assigned, 名称, 经营者 or 法定代表人, 场所, 经营范围 …), valid 长期."""
    from conftest import CERT_VALUES

    with clock.frozen(datetime(2026, 12, 2, 9, 0, tzinfo=BEIJING)):
        n = demo.create("李强", code, **_answered(demo, code))["number"]
        demo.fire("李强", n, "approve")  # 当场核准登记: the clerk enters the licence's data (conftest.CERT_VALUES)
        run_jobs(demo.engine)
    [licence] = certs(demo, n)
    credit = CERT_VALUES["credit_code"]
    assert (licence.title, licence.cert_type, licence.unit_id, licence.valid_until) == (
        "营业执照", "营业执照", "qdxh-shenpi", None)
    assert licence.holder == expected["名称"] and licence.holder_code == credit
    assert _fields(licence) == {k: credit if v == "CREDIT" else v for k, v in expected.items()}
    flat = "".join(pdf_text(demo, "李强", licence.number, tmp_path, unit_id="qdxh-shenpi").split())
    assert all("".join(v.split()) in flat for v in (credit, *expected.values()) if v != "CREDIT")
    assert "营业期限：长期" in flat and "登记机关：青岛西海岸新区行政审批服务局" in flat
    # The library finds it under the registered code: the next application's 营业执照 need not be scanned.
    [item] = demo.client.get("/api/v1/certificates", params={"holder_code": credit},
                             headers=demo.h("李强")).json()["items"]
    assert (item["type"], item["number"], item["valid_until"], item["status"]) == (
        "营业执照", licence.number, None, "valid")


def test_library_query_and_no_submission_of_a_held_business_licence(demo: Demo, objects: None,
                                                                     tmp_path: Path) -> None:
    n = branch_licence(demo)
    [licence] = certs(demo, n)
    r = demo.client.get("/api/v1/certificates", params={"holder_code": BRANCH_CODE}, headers=demo.h("陈静"))
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert r.json()["next_cursor"] is None
    assert {k: item[k] for k in ("type", "number", "holder", "holder_code", "holder_code_type", "issuer",
                                 "issuer_code", "valid_until", "status", "status_label")} == {
        "type": "营业执照", "number": licence.number, "holder": BRANCH["name"], "holder_code": BRANCH_CODE,
        "holder_code_type": "统一社会信用代码", "issuer": "青岛西海岸新区行政审批服务局",
        "issuer_code": "11370211MB1936126L", "valid_until": None, "status": "valid", "status_label": "有效"}
    assert {"label": "负责人", "value": "张建国"} in item["data"]
    assert all(d["label"] != "负责人公民身份号码" for d in item["data"])
    assert demo.client.get("/api/v1/certificates", params={"holder_code": "11010519491231002X"},
                           headers=demo.h("陈静")).json()["items"] == []
    # 免提交: the same company applies for a 公共场所卫生许可 in 浦东; its 营业执照 is not scanned again.
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=BRANCH)
    mat = next(m for m in case["materials"] if m["id"] == "business_licence")
    assert mat["status"] == "received"
    assert mat["library"] == {"certificate": licence.number, "title": "分公司营业执照",
                              "issuer": "青岛西海岸新区行政审批服务局", "type": "营业执照"}
    other = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant={**BRANCH, "id_number": SCHOOL_CODE})
    mat = next(m for m in other["materials"] if m["id"] == "business_licence")
    assert (mat["status"], mat["library"]) == ("missing", None)
    # The 收件凭证 is drawn when the case leaves intake: the pages scanned after 收件 are on it, and
    # the held licence reads 免提交 with its number.
    n = case["number"]
    for i in range(2):
        r = demo.client.post(f"/api/v1/cases/{n}/materials/floor_plans/pages", headers=demo.h("陈静"),
                             files={"file": (f"p{i}.jpg", jpeg(f"平面图 第{i + 1}页"), "image/jpeg")})
        assert r.status_code == 201, r.text
    run_jobs(demo.engine)
    [receipt] = [d for d in demo.client.get(f"/api/v1/cases/{n}/documents", headers=demo.h("陈静")).json()["items"]
                 if d["kind"] == "receipt"]
    assert receipt["sha256"] is None  # still at intake: not drawn yet
    demo.fire("陈静", n, "accept")
    run_jobs(demo.engine)
    [receipt] = [d for d in demo.client.get(f"/api/v1/cases/{n}/documents", headers=demo.h("陈静")).json()["items"]
                 if d["kind"] == "receipt"]
    pdf = demo.client.get(receipt["content_url"], headers=demo.h("陈静")).content
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True).stdout
    # Row 3 (平面图, its name wrapped over lines): 1 copy, 2 pages; row 6 (营业执照): taken from the library.
    assert re.search(r"^\s*3\s+1\s+2\s+已收取\s*$", text, re.M), text
    raw = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, check=True, text=True).stdout
    # 免提交 names the certificate that stands in for the scan, by its title and number.
    assert f"免提交：{licence.title}{licence.number}" in "".join(raw.split()), raw


def test_revocation_shows_on_verify_and_in_the_library(demo: Demo, objects: None) -> None:
    n = branch_licence(demo)
    [licence] = certs(demo, n)
    page = demo.client.get(f"/verify/{licence.number}")
    assert page.status_code == 200 and "真实有效" in page.text
    r = demo.client.post(f"/api/v1/certificates/{licence.number}/revocation", headers=demo.h("陈静"),
                         json={"reason": "以欺骗手段取得"})
    assert r.status_code == 403, r.text  # not the issuing counter
    r = demo.client.post(f"/api/v1/certificates/{licence.number}/revocation", headers=demo.h("李强"),
                         json={"reason": "以欺骗手段取得"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["status_label"]) == ("revoked", "已撤销")
    again = demo.client.post(f"/api/v1/certificates/{licence.number}/revocation", headers=demo.h("李强"),
                             json={"reason": "再次"})
    assert again.status_code == 409
    page = demo.client.get(f"/verify/{licence.number}")
    assert "被撤销, 不再有效: 以欺骗手段取得" in page.text
    [item] = demo.client.get("/api/v1/certificates", params={"holder_code": BRANCH_CODE},
                             headers=demo.h("李强")).json()["items"]
    assert item["status"] == "revoked"
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=BRANCH)  # a revoked one is not taken
    assert next(m for m in case["materials"] if m["id"] == "business_licence")["status"] == "missing"
    history = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("李强")).json()
    assert any(e["kind"] == "certificate_revoked" for e in history["items"])


def test_expiry_changes_the_status(demo: Demo, objects: None) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant={**BRANCH, "id_number": SCHOOL_CODE})
    n = case["number"]
    with clock.frozen(datetime(2026, 3, 2, 10, 0, tzinfo=BEIJING)):
        for t in ("accept", "start_review", "approve"):
            demo.fire("陈静", n, t)
        run_jobs(demo.engine)
    [permit] = certs(demo, n)
    assert str(permit.valid_until) == "2030-03-02"  # the item's 4 years
    with clock.frozen(datetime(2030, 3, 2, 23, 0, tzinfo=BEIJING)):
        assert "真实有效" in demo.client.get(f"/verify/{permit.number}").text
    with clock.frozen(datetime(2030, 3, 3, 0, 30, tzinfo=BEIJING)):  # still 2 March in UTC
        assert "已于 2030-03-02 过期" in demo.client.get(f"/verify/{permit.number}").text
        with session_scope(demo.engine) as s:  # (the clerks' 30-day tokens ran out long ago)
            [item], _ = certificates.library(s, SCHOOL_CODE)
            assert item["status"] == "expired"
            assert certificates.held(s, SCHOOL_CODE, "公共场所卫生许可证", clock.today()) is None


def test_links_default_to_where_serve_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TONGBAN_PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("TONGBAN_HOST", "127.0.0.2")
    monkeypatch.setenv("TONGBAN_PORT", "8443")
    assert Settings().public_base_url == "http://127.0.0.2:8443"
    monkeypatch.setenv("TONGBAN_PUBLIC_BASE_URL", "https://tongban.example.gov.cn")
    assert Settings().public_base_url == "https://tongban.example.gov.cn"
    assert listening_url("::1", 8000) == "http://[::1]:8000"


def test_the_case_page_asks_for_the_licence_data_and_links_the_library_certificate(demo: Demo, objects: None) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, applicant=BRANCH, competent_region="370211")
    n = case["number"]
    demo.fire("王芳", n, "forward")
    li = TestClient(demo.client.app, headers={"Origin": "http://testserver"})
    assert page_login(li, demo.tokens["李强"], f"/ui/cases/{n}").status_code == 303
    page = li.get(f"/ui/cases/{n}").text
    assert all(f'data-cert="{k}"' in page for k in HEAD) and "证照信息 (分公司营业执照)" in page
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found
    version = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("李强")).json()["version"]
    form = {"csrf": found.group(1), "version": str(version), "cert_id": list(HEAD), "cert_value": list(HEAD.values())}
    bad = li.post(f"/ui/cases/{n}/triggers/approve", data={**form, "cert_value": ["", *list(HEAD.values())[1:]]})
    assert bad.status_code == 422 and "须填写证照字段「类型」" in bad.text
    r = li.post(f"/ui/cases/{n}/triggers/approve", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    run_jobs(demo.engine)
    [licence] = certs(demo, n)
    assert {f["id"]: f["value"] for f in licence.data or []}["head"] == "张建国"
    chen = TestClient(demo.client.app, headers={"Origin": "http://testserver"})
    other = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=BRANCH)
    assert page_login(chen, demo.tokens["陈静"], f"/ui/cases/{other['number']}").status_code == 303
    page = chen.get(f"/ui/cases/{other['number']}").text
    # The label names the certificate taken, then links it by its number.
    row = re.search(r'<div class="library">(.*?)</div>', page, re.S)
    assert row, page
    assert re.sub(r"<[^>]+>", "", row.group(1)).split() == [
        "免提交：分公司营业执照（已从电子证照库调取）", "证照编号", f"{licence.number}（青岛西海岸新区行政审批服务局）"]
    assert f'href="/verify/{quote(licence.number)}"' in page
    # Before intake the form says which certificate stands in for the material.
    form_page = chen.get("/ui/cases/new", params={"item": "GGCSWSXK"}).text
    hint = re.search(r'<div class="library muted" data-library="business_licence">(.*?)</div>', form_page, re.S)
    assert hint and hint.group(1) == "免提交：申请人持有有效营业执照的，收件时从电子证照库调取，无需扫描"


def test_concurrent_issues_at_one_unit_take_gap_free_numbers_and_a_racing_duplicate_takes_none(
        demo: Demo, objects: None) -> None:
    from flows import jobs, outbox

    numbers = []
    for _ in range(6):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        for t in ("accept", "start_review", "approve"):
            demo.fire("陈静", case["number"], t)
        numbers.append(case["number"])
    with demo.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM outbox WHERE job = 'issue_certificate'")).scalars())
    claimed = outbox.claim(demo.engine, None, 100, job_ids=ids)
    assert len(claimed) == 6
    # Every job runs twice at once (a worker and a replay after a lost lease): 12 runs on 4 threads.
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda j: _attempt(jobs.run, demo.engine, j), [*claimed, *claimed]))
    assert sum(o is None for o in outcomes) >= 6, outcomes
    run_jobs(demo.engine)  # whatever lost its race is retried
    issued = sorted(c.number for n in numbers for c in certs(demo, n))
    assert issued == [f"浦审证〔{clock.today().year}〕{i:05d}号" for i in range(1, 7)]
    assert all(len(certs(demo, n)) == 1 for n in numbers)


def _attempt(fn: Any, *args: Any) -> str | None:
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 — the loser of a race may fail; the test counts
        return type(exc).__name__
    return None
