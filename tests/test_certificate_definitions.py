"""`items check` on declared certificates: each mistake reported at its line, and the bare name
form still accepted."""

from __future__ import annotations

import pytest

from core.settings import ROOT
from engine.catalog import parse
from states.certs import approving_triggers, specs_approved_by
from states.loader import DefinitionError

FGS = (ROOT / "catalog" / "items" / "fgs_fuzeren_biangeng.yaml").read_text(encoding="utf-8")
MBXX = (ROOT / "catalog" / "items" / "mbxx_banxue_zhizhao.yaml").read_text(encoding="utf-8")


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as err:
        parse(text, "item.yaml")
    return [p.format() for p in err.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_demo_declarations_and_what_each_trigger_fills() -> None:
    d = parse(FGS, "fgs.yaml").definition
    assert d.certificate_name == "分公司营业执照" and [c.kind for c in d.certificates] == ["营业执照"]
    assert approving_triggers(d, d.certificates[0]) == ["approve"]
    bundle = parse(MBXX, "mbxx.yaml").definition
    assert [c.issuer for c in bundle.certificates] == ["education", "market"]
    assert [c.id for c in specs_approved_by(bundle, "market_approve")] == ["business_licence"]
    assert specs_approved_by(bundle, "join") == []  # the automatic step fills nothing
    assert bundle.certificate_name == "民办学校办学许可证及营业执照"


def test_a_bare_name_is_still_a_certificate() -> None:
    start = FGS.index("certificate:\n")
    end = FGS.index("materials:\n")
    d = parse(FGS[:start] + "certificate: 分公司营业执照\n" + FGS[end:], "fgs.yaml").definition
    assert d.certificate_name == "分公司营业执照" and d.certificates[0].fields == []
    assert specs_approved_by(d, "approve") == []


@pytest.mark.parametrize(("old", "new", "message"), [
    ("  issuer: competent\n", "  issuer: tax\n", "未知的窗口角色 'tax'"),
    ("  holder_code: credit_code\n", "  holder_code: code\n", "未知的证照字段 'code'"),
    ("  validity: 长期\n", "  validity: {until: scope}\n", "须声明 validation: date"),
    ("  validity: 长期\n", "  validity: {years: 5, until: scope}\n", "有效期须且只能声明"),
    ("    - {id: head, label: 负责人, source: approval, max_length: 40}\n",
     "    - {id: scope, label: 负责人, source: approval, max_length: 40}\n", "重复的证照字段 'scope'"),  # the second
    ("source: computed, compute: issuer}", "source: computed, compute: weather}", "须声明 compute"),
    ("source: application, path: applicant.address}", "source: application}", "须声明 path"),
    ("  layout: certificate_FGSFZRBG.xml.j2\n", "  layout: ../../etc/passwd\n", "layout"),
    ("validation: credit_code}", "validation: luhn}", "validation"),
])
def test_mistakes_are_reported_at_their_line(old: str, new: str, message: str) -> None:
    assert old in FGS
    text = FGS.replace(old, new, 1)
    found = problems(text)
    assert any(message in p for p in found), found
    line = line_of(text, "{id: scope, label: 经营范围") if "重复" in message else line_of(text, new.strip()[:30])
    assert any(p.startswith(f"item.yaml:{line}:") for p in found if message in p), (line, found)


def test_approval_fields_need_a_person_to_fill_them() -> None:
    text = MBXX.replace("    approved_by: [market_approve]\n", "    approved_by: [join]\n")
    found = problems(text)
    assert any("审批填写的字段须由审批人员在作出决定时填写" in p for p in found), found
    text = MBXX.replace("    approved_by: [market_approve]\n", "    approved_by: [nowhere]\n")
    assert any("未定义的触发器 'nowhere'" in p for p in problems(text))


def test_a_bundle_needs_distinct_ids() -> None:
    text = MBXX.replace("  - id: business_licence\n", "  - id: school_licence\n")
    assert any("重复的证照编号 'school_licence'" in p for p in problems(text))


def test_validity_rules() -> None:
    from datetime import date

    from flows.certificate import valid_until
    from states.schema import CertificateSpec

    def spec(validity: object) -> CertificateSpec:
        return CertificateSpec.model_validate({"name": "许可证", "validity": validity, "fields": [
            {"id": "term_end", "label": "期限至", "source": "approval", "validation": "date"}]})

    issued = date(2028, 2, 29)
    assert valid_until(spec({"years": 4}), issued, {}) == date(2032, 2, 29)
    assert valid_until(spec({"years": 1}), issued, {}) == date(2029, 2, 28)  # no 29 February in 2029
    assert valid_until(spec("长期"), issued, {}) is None
    assert valid_until(spec({"until": "term_end"}), issued, {"term_end": "2030-06-30"}) == date(2030, 6, 30)
    assert valid_until(CertificateSpec(name="许可证"), issued, {}) == date(2033, 2, 28)  # the installation's 5 years
