"""Check characters: 统一社会信用代码 (GB 32100-2015) and 公民身份号码 (GB 11643-1999), with codes
published by the holders themselves (business licences shown on the companies' sites and in the
national enterprise credit system) and the standard's own examples, and each one broken."""

from __future__ import annotations

import pytest

from engine import idcodes

# Published 统一社会信用代码 of well-known companies.
REAL_CREDIT_CODES = {
    "914403001922038216": "华为技术有限公司",
    "91440300708461136T": "深圳市腾讯计算机系统有限公司",
    "91330100716105852F": "阿里巴巴(中国)有限公司",
    "91110108551385082Q": "小米科技有限责任公司",
    "91110000710926094P": "中国石油化工股份有限公司",
    "91520000214434146R": "贵州茅台酒股份有限公司",
}
# GB 11643-1999's own examples (the standard's appendix), one with the check character X.
REAL_ID_NUMBERS = ["11010519491231002X", "440524188001010014"]


@pytest.mark.parametrize("code", sorted(REAL_CREDIT_CODES))
def test_published_credit_codes_pass(code: str) -> None:
    assert idcodes.credit_code_problem(code) is None, REAL_CREDIT_CODES[code]
    # the embedded organisation code (positions 9–17) carries its own GB 11714 check
    assert idcodes.organization_code_check(code[8:16]) == code[16]


@pytest.mark.parametrize("code", sorted(REAL_CREDIT_CODES))
def test_every_other_check_character_fails(code: str) -> None:
    wrong = [c for c in idcodes.CREDIT_ALPHABET if c != code[17]]
    assert len(wrong) == 30
    for c in wrong:
        problem = idcodes.credit_code_problem(code[:17] + c)
        assert problem == f"统一社会信用代码校验码错误: 第 18 位应为 {code[17]}"


@pytest.mark.parametrize("code", sorted(REAL_CREDIT_CODES))
def test_one_changed_body_character_fails(code: str) -> None:
    # Any single substitution in the body changes the weighted sum by a non-multiple of 31.
    for i in range(17):
        for c in "0A":
            if code[i] == c or (2 <= i < 8 and not c.isdigit()):
                continue
            assert not idcodes.is_credit_code(code[:i] + c + code[i + 1:]), (i, c)


def test_two_swapped_neighbours_fail() -> None:
    code = "91110108551385082Q"
    swapped = code[:10] + code[11] + code[10] + code[12:]  # "...5513..." → "...5153..."
    assert swapped != code and not idcodes.is_credit_code(swapped)


@pytest.mark.parametrize(("code", "why"), [
    ("91440300708461136", "应为 18 位, 实为 17 位"),
    ("91440300708461136TT", "应为 18 位, 实为 19 位"),
    ("91440300708461136t", "不允许的字符: t"),
    ("9144030070846113IT", "不允许的字符: I"),
    ("9144030070846113OT", "不允许的字符: O"),
    ("91A40300708461136T", "行政区划代码"),
    ("91310115MA1K4ABC2X", "校验码错误"),  # a made-up placeholder code is refused
])
def test_malformed_credit_codes(code: str, why: str) -> None:
    problem = idcodes.credit_code_problem(code)
    assert problem is not None and why in problem


def test_made_codes_pass_both_checks() -> None:
    code = idcodes.make_credit_code("1137021100004502")
    assert len(code) == 18 and code.startswith("1137021100004502")
    assert idcodes.is_credit_code(code) and idcodes.organization_code_check(code[8:16]) == code[16]
    with pytest.raises(ValueError):
        idcodes.make_credit_code("113702110000450")


@pytest.mark.parametrize("number", REAL_ID_NUMBERS)
def test_published_id_numbers_pass(number: str) -> None:
    assert idcodes.id_number_problem(number) is None


@pytest.mark.parametrize("number", REAL_ID_NUMBERS)
def test_id_number_wrong_check_fails(number: str) -> None:
    for c in "0123456789X":
        if c != number[17]:
            assert idcodes.id_number_problem(number[:17] + c) == f"公民身份号码校验码错误: 第 18 位应为 {number[17]}"


@pytest.mark.parametrize(("number", "why"), [
    ("11010519491231002x", "大写 X"),           # lower-case x is not the standard's character
    ("110105491231002", "应为 18 位"),          # the 15-digit numbers before 1999 are not accepted
    ("110105194902300020", "19490230 不存在"),   # right check character, impossible birth date
    ("11010519491231002Ｘ", "大写 X"),
])
def test_malformed_id_numbers(number: str, why: str) -> None:
    problem = idcodes.id_number_problem(number)
    assert problem is not None and why in problem


def test_holder_code_follows_the_kind() -> None:
    assert idcodes.holder_code_problem("company", "914403001922038216") is None
    assert idcodes.holder_code_problem("person", "914403001922038216") is not None
    assert idcodes.holder_code_problem("person", "11010519491231002X") is None
    assert idcodes.holder_code_problem("company", "11010519491231002X") is not None
