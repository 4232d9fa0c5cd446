"""Verification: /verify/<编号> (page and JSON), the PDF upload, and `tongban verify FILE.pdf` exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import clock
from core.settings import ROOT
from engine import scans, seals
from engine.actors import SYSTEM
from engine.seal_image import seal_pdf
from storage.db import make_engine, session_scope
from storage.flow_tables import Certificate
from storage.seal_tables import UnitSeal
from storage.tables import Case
from tests.conftest import ALLIANCE, Demo

UNIT = "qdxh-shenpi"


def issue_signed(demo: Demo, tamper: bool = False) -> tuple[str, bytes]:
    """A case's certificate as the certificate job stores it once it signs: signed by the unit, kept as evidence."""
    case = demo.create("王芳", "FGSFZRBG")
    with session_scope(demo.engine) as s:
        signed = seals.sign_pdf(s, UNIT, seal_pdf("准予许可"), reason="证照", location="青岛")
        stored = signed[:200] + bytes([signed[200] ^ 1]) + signed[201:] if tamper else signed
        info = scans.store_evidence(s, case["number"], "certificate", stored, "application/pdf", SYSTEM)
        case_id = s.execute(sa.select(Case.id).where(Case.number == case["number"])).scalar_one()
        number = f"TEST-{case['number']}"
        s.add(Certificate(number=number, case_id=case_id, decision_seq=1, job_id=f"job-{case['number']}"[:36],
                          item_code="FGSFZRBG", title="营业执照", holder="测试申请人", counter_id="qd-xihai",
                          issued_at=clock.now(), valid_until=clock.today() + timedelta(days=365),
                          bucket=info.bucket, object_key=info.key, sha256=info.sha256, size=info.size))
    return number, stored


def test_the_demo_gives_every_unit_a_seal(demo: Demo) -> None:
    with session_scope(demo.engine) as s:
        units = {u for (u,) in s.execute(sa.text("SELECT id FROM units"))}
        have = {i.unit_id for i in seals.list_seals(s) if i.current}
    assert units and have == units


def test_the_verify_page_shows_a_signed_certificate_as_genuine(demo: Demo) -> None:
    number, _ = issue_signed(demo)
    page = demo.client.get(f"/verify/{number}")
    assert page.status_code == 200, page.text
    assert 'class="v ok"' in page.text and "真实有效" in page.text and "青岛西海岸新区行政审批服务局" in page.text
    assert "签名有效" in page.text and "（北京时间）" in page.text
    answer = demo.client.get(f"/api/v1/verify/{number}").json()
    assert answer["valid"] and answer["found"] and answer["signature"]["valid"]
    assert answer["signature"]["unit_id"] == UNIT and answer["record"]["title"] == "营业执照"
    assert answer["record"]["issued_at"].endswith("+08:00") and answer["signature"]["signed_at"].endswith("+08:00")


def test_a_stored_file_changed_by_one_byte_is_reported(demo: Demo) -> None:
    number, _ = issue_signed(demo, tamper=True)
    page = demo.client.get(f"/verify/{number}")
    assert 'class="v bad"' in page.text and "电子签章无效" in page.text
    answer = demo.client.get(f"/api/v1/verify/{number}").json()
    assert not answer["valid"] and not answer["signature"]["valid"]


def test_a_revoked_certificate_is_not_genuine_though_its_signature_holds(demo: Demo) -> None:
    number, _ = issue_signed(demo)
    with session_scope(demo.engine) as s:
        s.execute(sa.update(Certificate).where(Certificate.number == number).values(revoked_at=clock.now()))
    answer = demo.client.get(f"/api/v1/verify/{number}").json()
    assert not answer["valid"] and answer["signature"]["valid"] and "撤销" in answer["reason"]


def test_an_unknown_number_is_404_on_page_and_api(demo: Demo) -> None:
    assert demo.client.get("/verify/FAKE-0001").status_code == 404
    r = demo.client.get("/api/v1/verify/FAKE-0001")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_uploading_a_pdf_checks_it_and_finds_its_record(demo: Demo) -> None:
    number, stored = issue_signed(demo)
    ok = demo.client.post("/verify", files={"file": ("证照.pdf", stored, "application/pdf")})
    assert ok.status_code == 200 and 'class="v ok"' in ok.text and number in ok.text
    changed = stored[:-30] + bytes([stored[-30] ^ 1]) + stored[-29:]
    bad = demo.client.post("/verify", files={"file": ("证照.pdf", changed, "application/pdf")})
    assert bad.status_code == 200 and 'class="v bad"' in bad.text and "本平台没有这份文件的签发记录" in bad.text
    api = demo.client.post("/api/v1/verify", content=stored, headers={"Content-Type": "application/pdf"})
    assert api.status_code == 200 and api.json()["signature"]["valid"] and api.json()["record"]["number"] == number
    octets = demo.client.post("/api/v1/verify", content=stored, headers={"Content-Type": "application/octet-stream"})
    assert octets.status_code == 200 and octets.json() == api.json()
    api_bad = demo.client.post("/api/v1/verify", content=changed, headers={"Content-Type": "application/pdf"})
    assert api_bad.status_code == 200 and not api_bad.json()["signature"]["valid"]


def test_uploads_are_bounded(demo: Demo) -> None:
    big = b"%PDF-1.4\n" + b"0" * (seals.MAX_VERIFY_BYTES + 10)
    r = demo.client.post("/api/v1/verify", content=big, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 413
    empty = demo.client.post("/verify", files={"file": ("a.pdf", b"", "application/pdf")})
    assert empty.status_code == 422 and "请选择 PDF 文件" in empty.text


def test_uploads_have_a_budget_per_client(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.setattr(get_settings(), "verify_rate_per_minute", 2)
    pdf = seal_pdf("测试")
    answers = [demo.client.post("/api/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})
               for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    page = demo.client.post("/verify", files={"file": ("a.pdf", pdf, "application/pdf")})
    assert page.status_code == 429 and "Retry-After" in page.headers


# --- the command line -----------------------------------------------------------------------------

def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_cli_seals_and_verify_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings
    from engine import directory
    from storage import migrate
    from tests.test_seals import make_ca_p12

    # One installation: the CLI processes and this one share the database and the seal key.
    monkeypatch.setattr(get_settings(), "seal_key", "test-installation-seal-key")
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "TONGBAN_DATA_DIR": str(tmp_path), "TONGBAN_P12_PASSWORD": "pw",
           "TONGBAN_SEAL_KEY": "test-installation-seal-key"}
    engine = make_engine(env["TONGBAN_DATABASE_URL"])
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        directory.load_alliance(s, ALLIANCE)
    created = _cli(["seals", "create", UNIT], env)
    assert created.returncode == 0, created.stderr
    assert "已为 青岛西海岸新区行政审批服务局" in created.stdout
    unknown = _cli(["seals", "create", "no-such-unit"], env)
    assert unknown.returncode == 1 and "成员单位 no-such-unit 不存在" in unknown.stderr

    p12, _ = make_ca_p12(b"pw")
    (tmp_path / "unit.p12").write_bytes(p12)
    wrong = _cli(["seals", "import", UNIT, str(tmp_path / "unit.p12")], {**env, "TONGBAN_P12_PASSWORD": "no"})
    assert wrong.returncode == 1 and "密码错误" in wrong.stderr
    imported = _cli(["seals", "import", UNIT, str(tmp_path / "unit.p12")], env)
    assert imported.returncode == 0, imported.stderr
    listed = _cli(["seals", "list"], env)
    assert listed.returncode == 0 and listed.stdout.count(UNIT) == 2 and "停用" in listed.stdout
    assert "CA 签发" in listed.stdout and "自签名" in listed.stdout

    assert _cli(["seals", "key"], env).stdout.strip() == "test-installation-seal-key"
    with session_scope(engine) as s:  # signed here with the key the CLI imported
        signed = seals.sign_pdf(s, UNIT, seal_pdf("测试"), reason="受理通知书", location="青岛")
    good, bad = tmp_path / "good.pdf", tmp_path / "bad.pdf"
    good.write_bytes(signed)
    bad.write_bytes(signed[:500] + bytes([signed[500] ^ 1]) + signed[501:])
    ok = _cli(["verify", str(good)], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "结论: 有效" in ok.stdout and "签章单位: 青岛西海岸新区行政审批服务局" in ok.stdout
    changed = _cli(["verify", str(bad)], env)
    assert changed.returncode == 1 and "结论: 无效" in changed.stdout
    missing = _cli(["verify", str(tmp_path / "nope.pdf")], env)
    assert missing.returncode == 2 and "读不到" in missing.stderr
    with session_scope(engine) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(UnitSeal)).scalar_one() == 2


def test_a_notice_is_verified_by_its_document_number(demo: Demo) -> None:
    """收件凭证: issued at intake, drawn and signed by its job; /verify/<文号> shows it genuine."""
    from tests.conftest import run_jobs

    case = demo.create("王芳", "FGSFZRBG")
    drawing = demo.client.post(f"/api/v1/cases/{case['number']}/documents/receipt/drawing", headers=demo.h("王芳"))
    assert drawing.status_code == 202, drawing.text
    run_jobs(demo.engine)
    docs = demo.client.get(f"/api/v1/cases/{case['number']}/documents", headers=demo.h("王芳")).json()["items"]
    receipt = next(d for d in docs if d["kind"] == "receipt")
    answer = demo.client.get(f"/api/v1/verify/{receipt['number']}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] and body["record"]["kind"] == "receipt" and body["record"]["title"] == receipt["title"]
    assert body["signature"]["sha256"] == receipt["sha256"] and body["issuer"] == body["signature"]["unit"]
    page = demo.client.get(f"/verify/{receipt['number']}")
    assert page.status_code == 200 and 'class="v ok"' in page.text and receipt["number"] in page.text


def test_an_uploaded_pdf_is_looked_up_by_its_digest_through_an_index(db: sa.Engine) -> None:
    """/verify finds an upload's record by SHA-256 (engine.seals.find_record): an index on each
    table, so the public page reads a few rows, not every certificate and notice ever issued."""
    found = {t: {i["name"]: i["column_names"] for i in sa.inspect(db).get_indexes(t)}
             for t in ("certificates", "case_documents")}
    assert found["certificates"].get("ix_certificates_sha256") == ["sha256"]
    assert found["case_documents"].get("ix_case_documents_sha256") == ["sha256"]
    with db.connect() as conn:
        for table in ("certificates", "case_documents"):
            query = f"SELECT id FROM {table} WHERE sha256 = 'ab'"
            if db.dialect.name == "postgresql":
                conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # an empty table: make the choice visible
                plan = " ".join(conn.execute(sa.text(f"EXPLAIN {query}")).scalars())
            else:
                plan = " ".join(str(r[-1]) for r in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {query}")))
            assert f"ix_{table}_sha256" in plan, plan
