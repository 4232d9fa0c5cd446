"""Check characters of the two codes a holder is known by.

- 统一社会信用代码 (GB 32100-2015): 18 characters from a 31-character alphabet (digits and the
  capital letters without I, O, Z, S, V); positions 1–2 registration authority and category,
  3–8 the administrative region (GB/T 2260), 9–17 the organisation code (GB 11714), 18 the check
  character: weights 3^(i-1) mod 31, check = 31 - (sum mod 31), 31 counting as 0.
- 公民身份号码 (GB 11643-1999): 6-digit address code, 8-digit birth date, 3-digit order code and a
  check character by ISO 7064 MOD 11-2 (weights 2^(17-i) mod 11, remainder 10 written X).

Each ``*_problem`` function answers why a code is not valid, in Chinese, or ``None``; the
``is_*`` forms are for conditions.
"""

from __future__ import annotations

from datetime import date

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
_ID_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_ID_CHECK = "10X98765432"


def credit_code_check(body: str) -> str:
    """The 18th character for the first 17 of a 统一社会信用代码."""
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(body, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def organization_code_check(body: str) -> str:
    """The 9th character for the first 8 of an organisation code (GB 11714-1997)."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def credit_code_problem(code: str) -> str | None:
    if len(code) != 18:
        return f"统一社会信用代码应为 18 位, 实为 {len(code)} 位"
    bad = sorted({c for c in code if c not in CREDIT_ALPHABET})
    if bad:
        return f"统一社会信用代码含有不允许的字符: {'、'.join(bad)} (不使用 I、O、Z、S、V 及小写字母)"
    if not code[2:8].isdigit():
        return "统一社会信用代码第 3–8 位应为行政区划代码 (6 位数字)"
    expected = credit_code_check(code[:17])
    if code[17] != expected:
        return f"统一社会信用代码校验码错误: 第 18 位应为 {expected}"
    return None


def is_credit_code(code: str) -> bool:
    return credit_code_problem(code) is None


def id_number_problem(number: str) -> str | None:
    if len(number) != 18:
        return f"公民身份号码应为 18 位, 实为 {len(number)} 位"
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return "公民身份号码前 17 位应为数字, 第 18 位为数字或大写 X"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return f"公民身份号码中的出生日期 {number[6:14]} 不存在"
    if born.year < 1800:
        return f"公民身份号码中的出生日期 {number[6:14]} 不合理"
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    expected = _ID_CHECK[total % 11]
    if number[17] != expected:
        return f"公民身份号码校验码错误: 第 18 位应为 {expected}"
    return None


def is_id_number(number: str) -> bool:
    return id_number_problem(number) is None


def holder_code_problem(kind: str, code: str) -> str | None:
    """The applicant's 证件号码 checked as what the kind says it is: a company's credit code, a
    person's ID number."""
    return credit_code_problem(code) if kind == "company" else id_number_problem(code)


def code_type(kind: str) -> str:
    """持证主体代码类型 (GB/T 36903): 统一社会信用代码 for organisations, 公民身份号码 for people."""
    return "统一社会信用代码" if kind == "company" else "公民身份号码"


def make_credit_code(prefix: str) -> str:
    """A well-formed 统一社会信用代码 from its first 16 characters: the organisation code's check
    (position 17) and the credit code's (position 18) added. For demo data and tests."""
    if len(prefix) != 16:
        raise ValueError("须给出前 16 位")
    body = prefix + organization_code_check(prefix[8:16])
    return body + credit_code_check(body)
