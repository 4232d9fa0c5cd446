"""办事指南: the public JSON and pages, the exact one-time list for the chosen 情形, and the search
answering Chinese questions (its quality over the whole query set is bench/bench_guide_search.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import Demo, origin_of, page_login
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import ROOT
from storage import migrate
from storage.db import make_engine, session_scope


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    from engine.demo import seed

    tmp: Path = tmp_path_factory.mktemp("guide")
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml", tmp / "tokens.json", 30)
    with TestClient(create_app(engine)) as client:
        yield Demo(engine, client, tokens)
    engine.dispose()


def test_guide_catalog_lists_every_item_with_its_guide_without_login(demo: Demo) -> None:
    r = demo.client.get("/api/v1/guide")
    assert r.status_code == 200, r.text
    items = {g["code"]: g for g in r.json()["items"]}
    assert len(items) >= 12 and r.json()["next_cursor"] is None
    assert all(g["summary"] and g["legal_basis"] for g in items.values())
    cy = items["YJSKBCYD"]
    assert cy["bundle"] and cy["departments"] == ["市场监管部门", "消防救援机构"]
    cbw = {c["name"]: c for c in items["CBWLSXK"]["counters"]}
    assert cbw["南沙区政务服务中心云指导窗口"]["takes_applications"] is False  # 云指导 only
    assert cbw["济南市政务服务中心跨域通办专窗"]["services"] == ["收件", "办理"]


def test_item_guide_answers_select_exactly_their_materials(demo: Demo) -> None:
    full = demo.client.get("/api/v1/guide/YDJYBA").json()
    assert [s["id"] for s in full["situations"]] == ["filing_kind", "agent"]
    assert full["answers"] is None and len(full["materials"]) == 6
    assert {m["id"] for m in full["materials"] if m["situational"]} == {
        "residence_proof", "work_proof", "referral", "power_of_attorney"}
    r = demo.client.get("/api/v1/guide/YDJYBA", params={"situation": ["filing_kind:referral", "agent:self"]})
    assert r.status_code == 200, r.text
    g = r.json()
    assert [m["id"] for m in g["materials"]] == ["filing_form", "insured_id", "referral"]
    assert [a["label"] for a in g["answers"]] == ["异地转诊就医", "参保人本人办理"]


@pytest.mark.parametrize(("answers", "field"), [
    (["filing_kind:referral"], "situation.agent"),                 # a question left unanswered
    (["filing_kind:abroad", "agent:self"], "situation.filing_kind"),  # not one of its options
    (["filing_kind:referral", "agent:self", "colour:red"], "situation.colour"),
    (["referral"], "situation[0]"),
])
def test_item_guide_refuses_incomplete_or_unknown_answers_naming_the_field(
        demo: Demo, answers: list[str], field: str) -> None:
    r = demo.client.get("/api/v1/guide/YDJYBA", params={"situation": answers})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


def test_unknown_item_guide_is_404(demo: Demo) -> None:
    assert demo.client.get("/api/v1/guide/NOSUCH").status_code == 404


@pytest.mark.parametrize(("q", "code"), [
    ("开个奶茶店要什么材料", "YJSKBCYD"),
    ("我想注册一家公司", "YXGSSLDJ"),
    ("异地看病怎么备案", "YDJYBA"),
    ("分公司换负责人", "FGSFZRBG"),
    ("宝宝出生上户口", "YJSXSECS"),
    ("yyzz", "GTGSHSLDJ"),             # pinyin initials kept as an alias
    ("食品经营许可正", "SPJYXK"),       # a wrong last character
    ("spjyxk", "SPJYXK"),              # initials of the name, derived (no such alias)
    ("ydjyba", "YDJYBA"),              # initials of a run of the name's words: 异地就医备案
    ("gongjijin", "GJJZYJX"),          # full pinyin
    ("gongjij", "GJJZYJX"),            # pinyin typed so far: a prefix
    ("gonjijin", "GJJZYJX"),           # one letter missing
    ("yidijiuyi", "YDJYBA"),
])
def test_search_answers_chinese_questions_with_ranked_items(demo: Demo, q: str, code: str) -> None:
    r = demo.client.get("/api/v1/guide/search", params={"q": q})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["item_code"] == code, results
    assert results[0]["materials"] and results[0]["score"] > 0
    assert all(a["score"] >= b["score"] for a, b in zip(results, results[1:], strict=False))


def test_jieba_keeps_the_catalogs_names_whole_and_pinyin_covers_every_run_of_words() -> None:
    from engine.guide_search import WORD, pinyin_terms, segmenter, tokens

    cut = segmenter(["异地就医备案"])
    assert WORD + "异地就医备案" in tokens("我要异地就医备案", cut)  # learnt from the catalog
    assert WORD + "异地就医备案" not in tokens("我要异地就医备案", segmenter([]))
    assert WORD + "需要" not in tokens("需要什么材料", cut) and WORD + "公积金" in tokens("公积金怎么转", cut)
    terms = pinyin_terms("住房公积金异地转移接续")
    assert {"gongjijin", "gjj", "gjjydzy", "zhufanggongjijinyidizhuanyijiexu", "jiexu"} <= terms


def test_search_bounds_its_question(demo: Demo) -> None:
    assert demo.client.get("/api/v1/guide/search", params={"q": "开" * 201}).status_code == 422
    assert demo.client.get("/api/v1/guide/search", params={"q": "??"}).json() == {"results": []}


def _catalog_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The catalog's guides copied beside an items folder the settings point at: the server reads
    guides from there (catalog_dir.parent / "guides")."""
    import shutil

    from core.settings import get_settings

    shutil.copytree(ROOT / "catalog" / "guides", tmp_path / "guides")
    (tmp_path / "items").mkdir()
    monkeypatch.setattr(get_settings(), "catalog_dir", tmp_path / "items")
    return tmp_path / "guides"


def test_an_edited_alias_is_found_without_a_restart(
        demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guides = _catalog_copy(tmp_path, monkeypatch)

    def top(q: str) -> list[str]:
        r = demo.client.get("/api/v1/guide/search", params={"q": q})
        assert r.status_code == 200, r.text
        return [x["item_code"] for x in r.json()["results"]]

    assert top("食品经营许可证")[:1] == ["SPJYXK"]  # the index is built (and cached) first
    assert top("鳄鱼踢踏舞") == []
    path = guides / "SPJYXK.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("aliases: [食品许可,", "aliases: [鳄鱼踢踏舞, 食品许可,", 1), encoding="utf-8")
    assert top("鳄鱼踢踏舞") == ["SPJYXK"]  # whatever the file's mtime: its bytes changed
    path.write_text(text, encoding="utf-8")
    assert top("鳄鱼踢踏舞") == []


def test_a_broken_guide_leaves_every_other_guide_served(
        demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guides = _catalog_copy(tmp_path, monkeypatch)
    path = guides / "SPJYXK.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("\nfees:", "\nfee:", 1), encoding="utf-8")
    r = demo.client.get("/api/v1/guide")
    assert r.status_code == 200, r.text
    items = {g["code"]: g for g in r.json()["items"]}
    assert items["SPJYXK"]["summary"] == "" and items["YDJYBA"]["summary"]  # only the broken one is left out
    assert demo.client.get("/api/v1/guide/SPJYXK").status_code == 200
    assert demo.client.get("/api/v1/guide/YDJYBA").json()["legal_basis"]
    assert demo.client.get("/guide").status_code == 200
    assert demo.client.get("/guide/SPJYXK").status_code == 200
    search = demo.client.get("/api/v1/guide/search", params={"q": "异地看病怎么备案"})
    assert search.status_code == 200 and search.json()["results"][0]["item_code"] == "YDJYBA"


def test_items_check_validates_the_guides_beside_the_items(tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from cli.main import app as cli_app

    for folder in ("items", "guides", "forms"):
        shutil.copytree(ROOT / "catalog" / folder, tmp_path / folder)
    check = lambda: CliRunner().invoke(cli_app, ["items", "check", str(tmp_path / "items")])  # noqa: E731
    assert check().exit_code == 0, check().output
    spjy = tmp_path / "guides" / "SPJYXK.yaml"
    text = spjy.read_text(encoding="utf-8")
    spjy.write_text(text.replace("\nfees:", "\nfee:", 1), encoding="utf-8")
    (tmp_path / "guides" / "YDJYBA.yaml").unlink()
    gjj = (tmp_path / "guides" / "GJJZYJX.yaml").read_text(encoding="utf-8")
    (tmp_path / "guides" / "NOSUCH.yaml").write_text(gjj.replace("code: GJJZYJX", "code: NOSUCH"), encoding="utf-8")
    (tmp_path / "guides" / "GJJ2.yaml").write_text(gjj, encoding="utf-8")  # a second guide for one item
    done = check()
    assert done.exit_code == 1
    fee_line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("fees:"))
    ydjy = (tmp_path / "items" / "ydjy_beian.yaml").read_text(encoding="utf-8").splitlines()
    code_line = next(i for i, t in enumerate(ydjy, 1) if t.startswith("code: YDJYBA"))
    assert f"{spjy}:{fee_line}:" in done.output and "fee: 未知字段" in done.output
    assert f"ydjy_beian.yaml:{code_line}:" in done.output and "事项 YDJYBA 没有办事指南" in done.output
    assert "NOSUCH.yaml:2:" in done.output and "目录中没有事项 NOSUCH" in done.output
    assert "GJJ2.yaml:2:" in done.output and "每个事项一份" in done.output
    assert "4 个问题" in done.output
    one = CliRunner().invoke(cli_app, ["items", "check", str(tmp_path / "items" / "spjy_xuke.yaml")])
    assert one.exit_code == 1 and "fee: 未知字段" in one.output and "NOSUCH" not in one.output  # its own guide


def test_guide_pages_are_public_zh_cn_and_show_the_one_time_list(demo: Demo) -> None:
    index = demo.client.get("/guide", params={"q": "开饭店"})
    assert index.status_code == 200 and 'lang="zh-CN"' in index.text
    assert 'href="/guide/YJSKBCYD"' in index.text and "width=device-width" in index.text
    page = demo.client.get("/guide/GTGSHSLDJ", params={
        "s_organisation": "family", "s_agent": "self", "s_pre_approval": "absent"})
    assert page.status_code == 200
    listed = page.text.split('id="materials"')[1].split('id="where"')[0]
    assert "家庭成员关系证明" in listed and "授权委托书" not in listed and "共 4 项" in listed
    shown = re.sub(r'(action|href)="/guide/GTGSHSLDJ[^"]*"', "", page.text)
    assert "GTGSHSLDJ" not in shown  # no internal ids shown, only in links
    partial = demo.client.get("/guide/GTGSHSLDJ", params={"s_agent": "self"})
    assert "须回答情形问题" in partial.text
    assert demo.client.get("/guide/NOSUCH").status_code == 404
    # 免提交 names the certificate the library supplies, on the page and in the API.
    licence = demo.client.get("/guide/GGCSWSXK").text.split('id="materials"')[1].split('id="where"')[0]
    assert "免提交：已有有效营业执照的，从电子证照库调取" in licence
    [held] = [m for m in demo.client.get("/api/v1/guide/GGCSWSXK").json()["materials"] if m["from_library"]]
    assert held["library"] == "营业执照"


def test_intake_requires_the_answers_and_exactly_their_materials_and_records_them(demo: Demo) -> None:
    headers = {"Authorization": f"Bearer {demo.tokens['陈静']}"}
    applicant = {"name": "张三", "kind": "person", "id_number": "11010519491231002X", "phone": "13800138000"}
    base = {"item_code": "YDJYBA", "applicant": applicant}
    r = demo.client.post("/api/v1/cases", json={**base, "materials": {"filing_form": "received"}}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "situation.filing_kind"
    answers = {"filing_kind": "worker", "agent": "self"}
    r = demo.client.post("/api/v1/cases", json={**base, "situation": answers,
                                                 "materials": {"referral": "received"}}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0] == {"field": "materials.referral",
                                                               "reason": "所选情形不需要此材料"}
    r = demo.client.post("/api/v1/cases", json={**base, "situation": answers, "materials": {
        "filing_form": "received", "insured_id": "received"}}, headers=headers)
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    case = demo.client.get(f"/api/v1/cases/{number}", headers=headers).json()
    assert sorted(m["id"] for m in case["materials"]) == ["filing_form", "insured_id", "work_proof"]
    approve = next(t for t in case["triggers"] if t["trigger"] == "approve")
    assert "异地工作证明" in str(approve)  # closed: the one material this 情形 adds is missing
    history = demo.client.get(f"/api/v1/cases/{number}/history", headers=headers).json()["items"]
    assert history[0]["kind"] == "intake" and history[0]["data"]["situation"] == answers


def test_counter_intake_page_asks_the_situations_and_takes_exactly_their_materials(demo: Demo) -> None:
    client = TestClient(demo.client.app, base_url="http://testserver")
    assert page_login(client, demo.tokens["陈静"]).status_code == 303
    form = client.get("/ui/cases/new", params={"item": "YDJYBA"})
    assert 'id="situations"' in form.text and "属于哪一类备案人员?" in form.text
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    body = {"csrf": csrf, "item": "YDJYBA", "name": "李四", "kind": "person", "id_number": "11010519491231002X",
            "situation": ["filing_kind:temporary", "agent:agent"], "materials": ["filing_form", "referral"]}
    headers = {"Origin": origin_of(client)}
    wrong = client.post("/ui/cases/new", data=body, headers=headers)
    assert wrong.status_code == 422 and "所选情形不需要此材料" in wrong.text
    body["materials"] = ["filing_form", "insured_id", "power_of_attorney"]
    made = client.post("/ui/cases/new", data=body, headers=headers)  # PRG: 303 to 收件成功
    assert made.status_code == 200 and [r.status_code for r in made.history] == [303], made.text
    assert "收件成功" in made.text


def test_an_answer_selects_the_path_of_the_flow_on_the_case(demo: Demo) -> None:
    """食品经营许可: 延续 (conditions unchanged) skips 现场核查, 新办 goes through it; the guide says so."""
    def case(kind: str) -> str:
        answers = {"application_kind": kind, "online": "absent", "agent": "self"}
        materials = {m: "received" for m in ("application", "business_licence", "layout_plans", "safety_rules")}
        if kind == "renew":
            materials["old_licence"] = "received"
        number = demo.create("王芳", "SPJYXK", materials, situation=answers)["number"]
        demo.fire("王芳", number, "accept")
        return str(number)

    renew, new = case("renew"), case("new")
    view = demo.client.get(f"/api/v1/cases/{renew}", headers=demo.h("刘洋")).json()
    # The case's own answers, read from its intake event as the guard reads them.
    assert view["situation"] == [
        {"id": "application_kind", "question": "申请新办、延续还是变更许可?", "answer": "renew",
         "label": "延续许可 (经营条件未发生变化)"},
        {"id": "online", "question": "是否通过网络经营?", "answer": "absent", "label": "仅实体门店经营"},
        {"id": "agent", "question": "是否委托他人代为办理?", "answer": "self", "label": "法定代表人或负责人本人办理"}]
    assert demo.client.get(f"/api/v1/cases/{new}", headers=demo.h("刘洋")).json()["situation"][0]["answer"] == "new"
    triggers = {t["trigger"]: t for t in view["triggers"]}
    assert triggers["skip_inspection"]["open"] and not triggers["start_inspection"]["open"]
    assert triggers["start_inspection"]["reasons"] == ["所选情形不走此环节 (仅适用于「新办」、「变更许可事项」)"]
    refused = demo.fire("刘洋", renew, "start_inspection", expect=409)
    assert refused["guards"][0]["guard"] == "situation_path"
    assert demo.fire("刘洋", renew, "skip_inspection")["state"]["id"] == "review"
    demo.fire("刘洋", new, "skip_inspection", expect=409)
    assert demo.fire("刘洋", new, "start_inspection")["state"]["id"] == "inspection"
    history = demo.client.get(f"/api/v1/cases/{renew}/history", headers=demo.h("刘洋")).json()["items"]
    assert history[0]["data"]["situation"]["application_kind"] == "renew"
    assert [e["trigger"] for e in history[1:]] == ["accept", "skip_inspection"]
    g = demo.client.get("/api/v1/guide/SPJYXK", params={
        "situation": ["application_kind:renew", "online:absent", "agent:self"]}).json()
    assert g["path"] == ["免于现场核查"]
    assert demo.client.get("/api/v1/guide/SPJYXK").json()["path"] is None
    page = demo.client.get("/guide/SPJYXK", params={"s_application_kind": "renew", "s_online": "absent",
                                                    "s_agent": "self"})
    assert '<p id="path">办理流程: 免于现场核查</p>' in page.text
    page_login(demo.client, demo.tokens["刘洋"], f"/ui/cases/{renew}")  # the clerk's case page shows them too
    case_page = demo.client.get(f"/ui/cases/{renew}").text
    situation = case_page[case_page.index('id="situation"'):]
    assert "<dt>申请新办、延续还是变更许可?</dt><dd>延续许可 (经营条件未发生变化)</dd>" in situation


def test_blank_forms_and_samples_beside_the_item_are_listed_and_served(demo: Demo, tmp_path: Path) -> None:
    g = demo.client.get("/api/v1/guide/SPJYXK").json()
    application = next(m for m in g["materials"] if m["id"] == "application")
    assert application["blank_form_url"] == "/guide/SPJYXK/files/" + quote("食品经营许可申请书.pdf")
    assert [(f["kind"], f["name"]) for f in g["files"]] == [
        ("blank_form", "食品经营许可申请书.pdf"), ("sample", "食品经营许可申请书填写示例.pdf")]
    for f in g["files"]:
        r = demo.client.get(f["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.content == (ROOT / "catalog" / "forms" / "SPJYXK" / f["name"]).read_bytes()
    assert demo.client.get("/guide/SPJYXK/files/draw.py").status_code == 404  # only what a material names
    assert demo.client.get("/guide/SPJYXK/files/..%2FYDJYBA%2F跨省异地就医备案表.pdf").status_code == 404
    assert demo.client.get("/guide/NOSUCH/files/x.pdf").status_code == 404
    page = demo.client.get("/guide/SPJYXK").text
    assert page.count('class="form-link"') == 2 and "下载空白表格" in page and "查看填写示例" in page


def test_items_check_reports_a_missing_form_file_at_its_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app as cli_app

    items = tmp_path / "items"
    items.mkdir()
    text = (ROOT / "catalog" / "items" / "yxgs_sheli_dengji.yaml").read_text(encoding="utf-8")
    (items / "yxgs.yaml").write_text(text, encoding="utf-8")
    done = CliRunner().invoke(cli_app, ["items", "check", str(items)])
    assert done.exit_code == 1
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "有限责任公司章程示范文本.pdf" in t)
    assert f"yxgs.yaml:{line}:" in done.output
    assert "示例样表文件不存在: forms/YXGSSLDJ/有限责任公司章程示范文本.pdf" in done.output
    (tmp_path / "forms" / "YXGSSLDJ").mkdir(parents=True)
    for name in ("公司登记申请书.pdf", "公司登记申请书填写示例.pdf", "有限责任公司章程示范文本.pdf"):
        (tmp_path / "forms" / "YXGSSLDJ" / name).write_bytes(b"%PDF-1.4\n")
    assert CliRunner().invoke(cli_app, ["items", "check", str(items)]).exit_code == 0


@pytest.mark.parametrize(("change", "field", "reason"), [
    ("    supervised_by: pd-zhengwu\n", "    supervised_by: pd-jiaoyu-nosuch\n", "值守窗口须是目录中的有人值守窗口"),
    ("    supervised_by: pd-zhengwu\n", "    supervised_by: pd-zizhu-01\n", "值守窗口须是目录中的有人值守窗口"),
    ("      GTGSHSLDJ: [intake]\n      YXGSSLDJ: [intake]\n",
     "      GTGSHSLDJ: [intake, competent]\n      YXGSSLDJ: [intake]\n", "自助服务终端只能收件"),
], ids=["unknown-counter", "a-booth", "booth-handles"])
def test_directory_check_holds_a_booth_to_its_supervising_staffed_counter(
        tmp_path: Path, change: str, field: str, reason: str) -> None:
    from engine.directory_manage import DirectoryError, check_file

    text = (ROOT / "catalog" / "alliance.yaml").read_text(encoding="utf-8")
    assert change in text
    bad = text.replace(change, field, 1)
    path = tmp_path / "alliance.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(DirectoryError) as err:
        check_file(path)
    (problem,) = err.value.problems
    assert reason in problem.message
    lines = bad.splitlines()
    booth = lines.index("  - id: pd-zizhu-01")
    assert problem.line == next(i for i, t in enumerate(lines[booth:], booth + 1) if t == field.splitlines()[0])
    staffed = text.replace("    unit: jn-shenpi  # 济南市行政审批服务局\n",
                           "    unit: jn-shenpi\n    supervised_by: pd-zhengwu\n", 1)
    path.write_text(staffed, encoding="utf-8")
    with pytest.raises(DirectoryError) as err:
        check_file(path)
    assert "只有自助服务终端" in err.value.problems[0].message
