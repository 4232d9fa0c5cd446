"""The workbench's pages without a browser: the queue (columns, sorting, filters, the search box,
已办结, unclaimed work first), the case page's actions, scans, the intake form and the designer."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import get_args

from conftest import ALL_FGS, DEMO_APPLICANT, Demo, page_login, situation_form
from fastapi.testclient import TestClient
from PIL import Image

from api.schemas import IdType
from core import clock
from engine import applicants
from storage.db import session_scope
from storage.tables import Clerk


def _login(demo: Demo, who: str) -> TestClient:
    client = TestClient(demo.client.app, headers={"Origin": "http://testserver"})
    assert page_login(client, demo.tokens[who], "/ui/designer").status_code == 303
    return client


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-number="([0-9]+)">', html)


def _row(html: str, number: str) -> str:
    start = html.index(f'data-number="{number}"')
    return html[start:html.index("</tr>", start)]


def test_the_queue_tells_what_to_do_next(demo: Demo) -> None:
    people = ["青岛甲贸易有限公司", "青岛乙物流有限公司", "青岛丙科技有限公司"]
    made = [demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211",
                        applicant={**DEMO_APPLICANT, "name": n, "phone": f"0532-8600000{i}"})
            for i, n in enumerate(people)]
    versions = [demo.fire("王芳", c["number"], "forward")["version"] for c in made]
    first, second, third = (c["number"] for c in made)
    li = _login(demo, "李强")
    # 李强 reviews: claiming the first leaves the other two, unclaimed, at the top.
    claimed = demo.client.post(f"/api/v1/cases/{first}/claim",
                               headers=demo.h("李强", **{"If-Match": f'"{versions[0]}"'}))
    assert claimed.status_code == 200, claimed.text
    html = li.get("/ui/queue").text
    assert _rows(html) == [second, third, first]
    assert "待认领的办件排在前面" in html  # the headers' order holds within each part, and the page says so
    row = _row(html, second)
    for shown in ("青岛乙物流有限公司", "分公司负责人变更登记", "办理地审核", "待认领", "王芳"):
        assert shown in row, shown
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", row)  # received, in the product's zone
    assert "李强" in _row(html, first)
    # Sorted by applicant (a column header's link), newest first (the header again).
    by_name = li.get("/ui/queue?sort=applicant").text
    assert 'data-sort="applicant"' in by_name
    assert _rows(by_name)[:2] == sorted([second, third], key=lambda n: people[[c["number"] for c in made].index(n)])
    assert _rows(li.get("/ui/queue?sort=received&desc=true").text) == [third, second, first]
    # Filters: unclaimed, mine; the state of the item; unknown values are refused naming the field.
    assert _rows(li.get("/ui/queue?claim=mine").text) == [first]
    assert _rows(li.get("/ui/queue?claim=unclaimed").text) == [second, third]
    assert _rows(li.get("/ui/queue?item=FGSFZRBG&state=approved").text) == []
    bad = li.get("/ui/queue?item=FGSFZRBG&state=nosuch")
    assert bad.status_code == 422 and "状态" in bad.text
    assert li.get("/ui/queue?deadline=late").status_code == 422
    # The search box: by name (Chinese substring), the phone's last digits.
    assert _rows(li.get("/ui/queue", params={"q": "丙科技"}).text) == [third]
    assert _rows(li.get("/ui/queue", params={"q": "86000001"}).text) == [second]
    # …and the filters on screen narrow a search too (they were shown and ignored).
    assert set(_rows(li.get("/ui/queue", params={"q": "青岛"}).text)) == {first, second, third}
    assert _rows(li.get("/ui/queue", params={"q": "青岛", "claim": "mine"}).text) == [first]
    assert set(_rows(li.get("/ui/queue", params={"q": "青岛", "claim": "unclaimed"}).text)) == {second, third}
    assert _rows(li.get("/ui/queue", params={"q": "青岛", "item": "FGSFZRBG", "state": "approved"}).text) == []
    assert li.get("/ui/queue", params={"q": "青岛", "deadline": "late"}).status_code == 422
    # A finished case leaves the open queue and shows under 已办结, with its finish time.
    out = demo.fire("李强", first, "approve")
    out = demo.fire("李强", first, "issue", out["version"])
    demo.fire("王芳", first, "hand_over", out["version"])
    assert first not in _rows(li.get("/ui/queue").text)
    done = li.get("/ui/queue?tab=finished").text
    assert _rows(done) == [first] and 'aria-current="page"' in done and "办结" in _row(done, first)
    # Newest finished first, whatever a header would ask: no header offers a sort there.
    assert "data-sort=" not in done and '<th aria-sort="descending" title="最近办结的在前">办结时间 ▼</th>' in done
    assert "data-sort=" not in li.get("/ui/queue?tab=finished&sort=applicant").text
    wang = _login(demo, "王芳")
    assert _rows(wang.get("/ui/queue?tab=finished").text) == [first]
    assert _rows(wang.get("/ui/queue", params={"q": "甲贸易", "tab": "finished"}).text) == [first]


def _hidden(html: str, action: str) -> dict[str, str]:
    start = html.index(f'method="post" action="{action}"')
    chunk = html[start:html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', chunk))


def test_the_case_page_offers_what_this_clerk_can_do_and_names_the_rest(sqlite_demo: Demo) -> None:
    demo = sqlite_demo  # pages over the engine: the dialects differ below them (the queue runs on both)
    with session_scope(demo.engine) as s:  # a second reviewer at the competent counter, to hand a step to
        s.add(Clerk(name="张伟", counter_id="qd-xihai", roles="reviewer,approver"))
    case = demo.create("王芳", "FGSFZRBG", {"application": "received"}, competent_region="370211",
                       situation={"agent": "agent"})  # 委托代理人: the 授权委托书 is among the missing
    number = case["number"]
    wang, li = _login(demo, "王芳"), _login(demo, "李强")
    page = wang.get(f"/ui/cases/{number}").text
    # 形式审查 is 王芳's, closed by the missing materials (the reason shown); 撤回 is hers too.
    assert re.search(r'data-trigger="forward" disabled', page) and "缺少必要材料" in page
    assert 'data-trigger="withdraw"' in page
    assert "需要角色" not in page and "Prefect" not in page
    # The live check answers the version the page was drawn at.
    assert wang.get(f"/ui/cases/{number}/version").json() == {"version": case["version"]}
    for m in ("power_of_attorney", "appointment_docs", "license"):
        page = wang.get(f"/ui/cases/{number}").text
        assert wang.post(f"/ui/cases/{number}/materials/{m}", data={
            **_hidden(page, f"/ui/cases/{number}/materials/{m}"), "status": "received"},
            follow_redirects=False).status_code == 303
    page = wang.get(f"/ui/cases/{number}").text
    r = wang.post(f"/ui/cases/{number}/triggers/forward", data=_hidden(page, f"/ui/cases/{number}/triggers/forward"),
                  follow_redirects=False)
    assert r.status_code == 303
    # At the competent counter now: 王芳 sees who does what next, as text, no button for it.
    page = wang.get(f"/ui/cases/{number}").text
    assert 'data-trigger="approve"' not in page and 'data-trigger="reject"' not in page
    steps = page[page.index('id="next-steps"'):]
    steps = steps[:steps.index("</ul>")]
    assert "核准" in steps and "青岛" in steps
    # 李强 claims, then hands the step to 张伟 by name; a supervisor 改派 it back.
    page = li.get(f"/ui/cases/{number}").text
    assert 'data-trigger="approve"' in page and 'id="send-back-form"' in page
    assert li.post(f"/ui/cases/{number}/claim", data=_hidden(page, f"/ui/cases/{number}/claim"),
                   follow_redirects=False).status_code == 303
    page = li.get(f"/ui/cases/{number}").text
    zhang = re.search(r'<option value="(\d+)">张伟</option>', page)
    assert zhang, "张伟 is offered"
    r = li.post(f"/ui/cases/{number}/hand-over", data={**_hidden(page, f"/ui/cases/{number}/hand-over"),
                                                       "clerk_id": zhang.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    page = li.get(r.headers["location"]).text
    assert "张伟" in page[page.index('id="claims"'):page.index("</dd>", page.index('id="claims"'))]
    assert "转交 → 张伟" in page
    zhao = _login(demo, "赵督查")
    page = zhao.get(f"/ui/cases/{number}").text
    assert "改派" in page
    li_id = re.search(r'<option value="(\d+)">李强</option>', page).group(1)  # type: ignore[union-attr]
    back = {**_hidden(page, f"/ui/cases/{number}/hand-over"), "clerk_id": li_id}
    assert zhao.post(f"/ui/cases/{number}/hand-over", data=back, follow_redirects=False).status_code == 303
    # 退回: one form, the target chosen; the case is back at 王芳's counter, with the reason.
    page = li.get(f"/ui/cases/{number}").text
    target = re.search(r'<select name="target" id="send-back-target">\s*<option value="([a-z_]+)">', page)
    r = li.post(f"/ui/cases/{number}/send-back", data={**_hidden(page, f"/ui/cases/{number}/send-back"),
                                                       "target": target.group(1), "comment": "授权委托书未签字"},  # type: ignore[union-attr]
                follow_redirects=False)
    assert r.status_code == 303
    page = wang.get(f"/ui/cases/{number}").text
    assert 'id="state-label">已接件<' in page and "授权委托书未签字" in page


def test_scans_upload_once_open_full_size_reorder_and_withdraw_with_a_reason(sqlite_demo: Demo, tmp_path: Path) -> None:
    demo = sqlite_demo  # pages over the engine: the dialects differ below them (the queue runs on both)
    from api.pages import scans_ui
    from storage.object_local import LocalStore

    demo.client.app.dependency_overrides[scans_ui.object_store] = lambda: LocalStore(tmp_path / "objects")
    number = demo.create("王芳", "FGSFZRBG", {})["number"]
    wang = _login(demo, "王芳")
    url = f"/ui/cases/{number}/materials/application/pages"

    def png(colour: str) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (60, 40), colour).save(out, "PNG")
        return out.getvalue()

    for colour in ("white", "black"):
        hidden = _hidden(wang.get(f"/ui/cases/{number}").text, url)
        for _ in range(2):  # the same form twice (Back and submit): one page
            r = wang.post(url, data=hidden, files={"file": ("页.png", png(colour), "image/png")},
                          follow_redirects=False)
            assert r.status_code == 303
    page = wang.get(f"/ui/cases/{number}").text
    ids = re.findall(r'data-page="(\d+)"', page)
    assert len(ids) == 2
    full = wang.get(f"{url}/{ids[0]}")
    assert full.status_code == 200 and full.headers["content-type"] == "image/png" and full.content == png("white")
    # ↑ on the second page: it becomes the first (the page drawn after the download, which the
    # history records).
    page = wang.get(f"/ui/cases/{number}").text
    r = wang.post(f"{url}/order", data=_hidden(page, f"{url}/order"), follow_redirects=False)
    assert r.status_code == 303
    page = wang.get(f"/ui/cases/{number}").text
    assert re.findall(r'data-page="(\d+)"', page) == ids[::-1] and "调整扫描件顺序" in page
    # 撤回 needs a reason; with one, the page goes and the history says why.
    action = f"{url}/{ids[0]}/withdraw"
    assert wang.post(action, data=_hidden(page, action)).status_code == 422
    page = wang.get(f"/ui/cases/{number}").text
    r = wang.post(action, data={**_hidden(page, action), "reason": "拍摄模糊"}, follow_redirects=False)
    assert r.status_code == 303
    page = wang.get(f"/ui/cases/{number}").text
    assert re.findall(r'data-page="(\d+)"', page) == [ids[1]] and "拍摄模糊" in page and "撤回扫描件" in page


def test_the_intake_form_offers_what_the_api_takes_and_checks_it_in_chinese(sqlite_demo: Demo) -> None:
    demo = sqlite_demo  # pages over the engine: the dialects differ below them (the queue runs on both)
    assert set(get_args(IdType)) == set(applicants.ID_TYPES)  # the API's list is the engine's
    wang = _login(demo, "王芳")
    # Regions: only those that handle the item (the 民办学校 bundle is decided in 浦东 alone).
    form = wang.get("/ui/cases/new?item=MBXXZZHB").text
    assert re.findall(r'<select name="competent_region" id="competent_region">(.*?)</select>', form, re.S)[0].count(
        "<option") == 1 and "浦东新区" in form
    form = wang.get("/ui/cases/new?item=CBWLSXK").text
    regions = re.search(r'<select name="competent_region" id="competent_region">(.*?)</select>', form, re.S)
    assert regions and "南沙" not in regions.group(1) and "青岛" in regions.group(1)  # 南沙 only guides it
    for shown in ('name="mode"', 'name="agent_name"', 'name="id_type"', "港澳居民来往内地通行证", 'name="defer"',
                  'name="promise_date"', 'id="commitment"'):
        assert shown in form, shown
    base = {**_hidden(form, "/ui/cases/new"), "name": "李某", "kind": "person", "materials": ["application",
                                                                                           "operator_id"],
            "situation": situation_form("CBWLSXK", ["application", "operator_id"])}
    bad = wang.post("/ui/cases/new", data={**base, "id_type": "护照", "id_number": "e1234", "agent_name": "张某",
                                           "agent_id_number": "110105194912310021", "defer": ["premises_proof"],
                                           "promise_material": ["premises_proof"], "promise_date": ["2020-01-01"]})
    assert bad.status_code == 422, bad.text[-3000:]
    shown = bad.text[bad.text.index('id="errors"'):bad.text.index("</ul>", bad.text.index('id="errors"'))]
    assert "承诺补齐日期" in shown and "早于今天" in shown
    bad = wang.post("/ui/cases/new", data={**base, "id_type": "护照", "id_number": "e12345", "agent_name": "张某",
                                           "agent_id_number": "110105194912310021"})
    shown = bad.text[bad.text.index('id="errors"'):bad.text.index("</ul>", bad.text.index('id="errors"'))]
    assert "护照号码应为" in shown and "代理人证件号码" in shown and "校验码错误" in shown
    assert "applicant" not in shown and "agent" not in shown and demo.count("cases") == 0
    alone = wang.post("/ui/cases/new", data={**base, "id_type": "护照", "id_number": "E12345670",
                                             "agent_id_type": "居民身份证"}, follow_redirects=False)
    assert alone.status_code == 303  # no agent: the type select's default alone is none
    form = wang.get("/ui/cases/new?item=CBWLSXK").text
    base = {**base, **_hidden(form, "/ui/cases/new")}
    ok = wang.post("/ui/cases/new", data={
        **base, "id_type": "护照", "id_number": "E12345678", "agent_name": "张某", "agent_id_type": "居民身份证",
        "agent_id_number": "11010519491231002X", "mode": "全程网办", "defer": ["premises_proof"],
        "promise_material": ["premises_proof"], "promise_date": [clock.today().isoformat()],
        "commit": "1", "signer": "李某"}, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    done = wang.get(ok.headers["location"]).text
    number = re.search(r'id="number">([^<]+)<', done).group(1)  # type: ignore[union-attr]
    assert 'id="print-receipt"' in done
    case = demo.client.get(f"/api/v1/cases/{number}", headers=demo.h("王芳")).json()
    assert case["mode"] == "全程网办" and case["commitment"]["signer"] == "李某"
    assert case["applicant"]["id_type"] == "护照" and case["applicant"]["agent"]["name"] == "张某"
    deferred = next(m for m in case["materials"] if m["id"] == "premises_proof")
    assert deferred["status"] == "deferred" and "承诺于" in deferred["promise"]
    page = wang.get(f"/ui/cases/{number}").text
    assert "护照" in page and 'id="agent">张某' in page


def test_the_designer_checks_with_hints_diffs_publishes_and_counts_running_cases(sqlite_demo: Demo) -> None:
    demo = sqlite_demo  # pages over the engine: the dialects differ below them (the queue runs on both)
    demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")  # one case running on version 3
    sun = _login(demo, "孙设计")
    home = sun.get("/ui/designer").text
    row = home[home.index('data-code="FGSFZRBG"'):]
    assert re.search(r'data-version="4">\(1 件在办\)', row[:row.index("</tr>")])
    source = (Path(__file__).parent.parent / "catalog" / "items" / "fgs_fuzeren_biangeng.yaml").read_text("utf-8")
    draft = source.replace("version: 4", "version: 5").replace("to: handling, roles: [clerk]",
                                                               "to: handlin, roles: [clerk]")
    checked = sun.post("/ui/designer/check", data={**_hidden(home, "/ui/designer/check"), "source": draft})
    assert checked.status_code == 422
    problems = checked.text[checked.text.index('id="problems"'):]
    assert "handlin" in problems and "您是否要写「<code>handling</code>」" in problems
    assert problems.count("未知的状态") == 1  # reported once, by the checker
    assert re.search(r'data-line="\d+"', problems) and 'id="publish" disabled' in checked.text
    # A schema problem is said in Chinese, without pydantic's English or its pattern.
    wrong = sun.post("/ui/designer/check", data={**_hidden(home, "/ui/designer/check"),
                                                 "source": draft.replace("case_type: 即办件", "case_type: 即办")})
    start = wrong.text.index('id="problems"')
    problems = wrong.text[start:wrong.text.index("</ol>", start)]
    assert "case_type: 须为 &#39;即办件&#39;、&#39;承诺件&#39; 之一" in problems and "Input should" not in problems
    # ... in the same round as the misspelt state the checker would only reach after it.
    assert "未知的状态 &#39;handlin&#39;" in problems and "您是否要写「<code>handling</code>」" in problems
    assert problems.count("handlin&#39;") == 1
    # Corrected: valid, the diff against version 4, and the publish button open.
    fixed = draft.replace("to: handlin,", "to: handling,")
    checked = sun.post("/ui/designer/check", data={**_hidden(home, "/ui/designer/check"), "source": fixed})
    assert checked.status_code == 200 and 'id="valid"' in checked.text
    diff = checked.text[checked.text.index('id="diff"'):]
    assert '<tr class="op-del"><td class="op">-</td><td><pre>version: 4</pre>' in diff
    assert '<tr class="op-add"><td class="op">+</td><td><pre>version: 5</pre>' in diff
    assert 'id="publish" disabled' not in checked.text
    # Publishing takes the designer's role; sent twice it publishes once.
    data = {**_hidden(checked.text, "/ui/designer/check"), "source": fixed}
    wang = _login(demo, "王芳")
    theirs = {**data, "csrf": _hidden(wang.get("/ui/designer").text, "/ui/designer/check")["csrf"]}
    assert wang.post("/ui/designer/publish", data=theirs).status_code == 403
    versions = demo.count("item_versions", code="FGSFZRBG")
    first = sun.post("/ui/designer/publish", data=data, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].endswith("version=5&published=new")
    again = sun.post("/ui/designer/publish", data=data, follow_redirects=False)
    assert again.headers["location"] == first.headers["location"]
    assert demo.count("item_versions", code="FGSFZRBG") == versions + 1
    page = sun.get(first.headers["location"]).text
    assert 'id="published"' in page and "(1 件在办)" in page and "(0 件在办)" in page
