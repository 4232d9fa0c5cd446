"""Who applies and who comes for them: 证件类型 and the check of each kind of 证件号码.

An applicant (or the agent, 代理人/经办人, who comes to the counter for them) is known by one
certificate. The two codes with a check character are checked by it (居民身份证 GB 11643,
统一社会信用代码 GB 32100, in ``engine.idcodes``); the others by their printed form. Without a
type, a company's code is its 统一社会信用代码 and a person's their 居民身份证 number.
"""

from __future__ import annotations

import re
from typing import Any

from engine import idcodes

RESIDENT_ID, CREDIT_CODE = "居民身份证", "统一社会信用代码"
# type → (who may hold it, its printed form or None when a check character decides, what it looks like)
ID_TYPES: dict[str, tuple[frozenset[str], re.Pattern[str] | None, str]] = {
    RESIDENT_ID: (frozenset({"person"}), None, "18 位, 末位可为 X"),
    CREDIT_CODE: (frozenset({"company"}), None, "18 位数字或大写字母"),
    "护照": (frozenset({"person"}), re.compile(r"[A-Z0-9]{5,17}"), "5 至 17 位大写字母或数字"),
    "港澳居民来往内地通行证": (frozenset({"person"}), re.compile(r"[HM][0-9]{8}([0-9]{2})?"),
                      "H 或 M 开头, 后接 8 或 10 位数字"),
    "台湾居民来往大陆通行证": (frozenset({"person"}), re.compile(r"[0-9]{8}([0-9]{2})?"), "8 或 10 位数字"),
    "外国人永久居留身份证": (frozenset({"person"}), re.compile(r"[A-Z]{3}[0-9]{12}|9[0-9]{17}"),
                    "15 位 (3 个字母加 12 位数字) 或 9 开头的 18 位数字"),
    "营业执照注册号": (frozenset({"company"}), re.compile(r"[0-9]{13}|[0-9]{15}"), "13 或 15 位数字"),
}
PERSON_TYPES = [t for t, (kinds, _, _) in ID_TYPES.items() if "person" in kinds]
COMPANY_TYPES = [t for t, (kinds, _, _) in ID_TYPES.items() if "company" in kinds]


def default_type(kind: str) -> str:
    return CREDIT_CODE if kind == "company" else RESIDENT_ID


def number_problem(id_type: str, number: str) -> str | None:
    """Why ``number`` is no 证件号码 of ``id_type`` (in words), or None."""
    if id_type == RESIDENT_ID:
        return idcodes.id_number_problem(number)
    if id_type == CREDIT_CODE:
        return idcodes.credit_code_problem(number)
    _, form, looks = ID_TYPES[id_type]
    return None if form is not None and form.fullmatch(number) else f"{id_type}号码应为 {looks}"


def identity_problems(applicant: dict[str, Any], field: str = "applicant") -> list[dict[str, str]]:
    """The applicant's 证件类型 and 证件号码, and the agent's, checked: ``{field, reason}`` each."""
    errors = []
    kind = applicant.get("kind", "person")
    id_type = applicant.get("id_type") or default_type(kind)
    if id_type not in ID_TYPES:
        errors.append({"field": f"{field}.id_type", "reason": f"不支持的证件类型「{str(id_type)[:40]}」"})
    elif kind not in ID_TYPES[id_type][0]:
        who = "企业" if kind == "company" else "个人"
        errors.append({"field": f"{field}.id_type", "reason": f"{who}申请人不使用{id_type}"})
    elif applicant.get("id_number") and (problem := number_problem(id_type, applicant["id_number"])):
        errors.append({"field": f"{field}.id_number", "reason": problem})
    agent = applicant.get("agent")
    if agent:
        errors += identity_problems({**agent, "kind": "person"}, f"{field}.agent")
    return errors
