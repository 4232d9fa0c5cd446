"""Publishing item versions over the API: running cases stay on the version they started with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, free_port, wait_healthy

from core.settings import ROOT
from storage import migrate
from storage.db import make_engine

SRC = (ROOT / "catalog" / "items" / "ggcs_weisheng_xuke.yaml").read_text(encoding="utf-8")


def publish(demo: Demo, text: str, who: str = "孙设计") -> httpx.Response:
    return demo.client.post("/api/v1/items", content=text.encode(),
                            headers=demo.h(who, **{"Content-Type": "application/yaml"}))


def test_running_case_keeps_its_version_after_a_new_one_is_published(demo: Demo) -> None:
    old = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    v2 = SRC.replace("version: 4", "version: 5").replace("label: 审核,", "label: 审核(第二版),")
    r = publish(demo, v2)
    assert r.status_code == 201 and r.json()["version"] == 5
    assert publish(demo, v2).status_code == 200  # identical re-publish is a no-op
    changed = publish(demo, v2.replace("审核(第二版)", "审核(改)"))
    assert changed.status_code == 409
    new = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    assert old["item"]["version"] == 4 and new["item"]["version"] == 5
    out = demo.fire("陈静", old["number"], "accept", old["version"])
    out = demo.fire("陈静", old["number"], "start_review", out["version"])
    assert out["state"]["label"] == "审核" and out["item"]["version"] == 4
    out = demo.fire("陈静", new["number"], "accept", new["version"])
    out = demo.fire("陈静", new["number"], "start_review", out["version"])
    assert out["state"]["label"] == "审核(第二版)"
    listed = demo.client.get("/api/v1/items", headers=demo.h("陈静")).json()["items"]
    assert next(i for i in listed if i["code"] == "GGCSWSXK")["latest_version"] == 5
    v1 = demo.client.get("/api/v1/items/GGCSWSXK", params={"version": 4}, headers=demo.h("陈静")).json()
    assert v1["version"] == 4 and len(v1["content_hash"]) == 64


def test_publishing_needs_a_designer_and_a_valid_definition(demo: Demo) -> None:
    assert publish(demo, SRC, who="陈静").status_code == 403
    before = demo.count("item_versions")
    r = publish(demo, SRC.replace("version: 4", "version: 6").replace("to: review,", "to: nowhere,"))
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert "未知的状态 'nowhere'" in err["reason"] and err["line"] > 1
    assert demo.count("item_versions") == before


def test_diagram_endpoint(demo: Demo) -> None:
    r = demo.client.get("/api/v1/items/MBXXZZHB/diagram", headers=demo.h("陈静"))
    assert r.status_code == 200 and "state joint_review {" in r.text
    r = demo.client.get("/api/v1/items/MBXXZZHB/diagram", params={"format": "svg"}, headers=demo.h("陈静"))
    assert r.headers["content-type"].startswith("image/svg+xml") and "<svg" in r.text


def test_applicant_progress_shows_status_only_and_is_rate_limited(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n, code = case["number"], case["query_code"]
    demo.fire("陈静", n, "accept", case["version"])
    r = demo.client.get(f"/api/v1/progress/{n}", params={"code": code})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == {"code": 3, "label": "已受理"}
    assert [s["label"] for s in body["steps"]] == ["已接件", "已受理"]
    assert "测试申请人" not in r.text and "0531" not in r.text and "applicant" not in body
    wrong = demo.client.get(f"/api/v1/progress/{n}", params={"code": "AAAAAAAAAA"})
    unknown = demo.client.get("/api/v1/progress/0000", params={"code": code})
    assert wrong.status_code == unknown.status_code == 404 and wrong.json()["detail"] == unknown.json()["detail"]
    statuses = [demo.client.get(f"/api/v1/progress/{n}", params={"code": code}).status_code for _ in range(40)]
    assert statuses[-1] == 429 and statuses.count(200) < 40


def test_migrations_match_the_tables(db: sa.Engine) -> None:
    migrate.check(db)


def test_oversized_body_is_refused(demo: Demo) -> None:
    r = publish(demo, "x" * 2_000_000)
    assert r.status_code == 413 and r.json()["title"] == "请求体过大"


def test_serve_starts_on_embedded_defaults(tmp_path: Path) -> None:
    """The README's first command: migrates, seeds the demo, prints tokens, answers /healthz."""
    port = free_port()
    env = {"TONGBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "TONGBAN_DATA_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}/healthz", 60, interval=0.2), "server did not start"
        token = next(line.split()[-1] for line in _lines(tmp_path) if line)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/items", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and len(r.json()["items"]) >= 4
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "演示工作人员登录令牌" in out and "王芳" in out and "tb_" in out
    engine = make_engine(env["TONGBAN_DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM counters").scalar_one() >= 3
        regions = conn.exec_driver_sql("SELECT count(*) FROM regions").scalar_one()
    assert regions >= 3


def _lines(tmp_path: Path) -> list[str]:
    import json

    return [t["token"] for t in json.loads((tmp_path / "demo-tokens.json").read_text(encoding="utf-8"))]
