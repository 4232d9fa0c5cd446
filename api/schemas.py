"""Request bodies of the clerk API; responses are the engine's read models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.enums import MaterialStatus, Mode, value_of

# Text that is trimmed and then must not be empty: the pattern says so in the schema (a client
# sending only spaces is refused on the rule it was told). Spelt out, not \s: the server trims
# Unicode White_Space, JSON Schema's \s (ECMA-262) differs from it at U+0085 and U+FEFF, and
# Python's at U+001C–U+001F (counted as blank here, on every side).
NON_BLANK = "[^\t\n\v\f\r \x1c-\x1f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NON_BLANK)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


IdType = Literal["居民身份证", "统一社会信用代码", "护照", "港澳居民来往内地通行证", "台湾居民来往大陆通行证",
                 "外国人永久居留身份证", "营业执照注册号"]
IdNumber = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{6,32}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9\-]{5,20}$")]


class Agent(_Body):
    """代理人/经办人: who comes to the counter for the applicant (a person; 居民身份证 unless told)."""

    name: Text
    id_type: IdType | None = None
    id_number: IdNumber | None = None
    phone: Phone | None = None


class Applicant(_Body):
    kind: Literal["person", "company"] = "person"
    name: Text
    # Without a type: a company's 统一社会信用代码, a person's 居民身份证 (both checked by their check character).
    id_type: IdType | None = None
    id_number: IdNumber | None = None
    phone: Phone | None = None
    address: Annotated[str, StringConstraints(max_length=300)] | None = None
    agent: Agent | None = None


class Deferral(_Body):
    material: Text
    promise: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000,
                                              pattern=NON_BLANK)]


class Commitment(_Body):
    signer: Text
    text: Annotated[str, StringConstraints(max_length=4000)] = "本人承诺所填写信息真实、准确, 并按期补齐相关材料。"


class CaseCreate(_Body):
    # The README's walkthrough: 济南 takes in a 分公司负责人变更 for a branch registered in 青岛西海岸.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "item_code": "FGSFZRBG", "competent_region": "370211",
        "applicant": {"name": "青岛某某贸易有限公司黄岛分公司", "kind": "company", "phone": "0532-86000000",
                      "id_number": "91370211061338419U", "address": "山东省青岛市黄岛区长江中路 216 号"},
        "materials": {"application": "received", "power_of_attorney": "received",
                      "appointment_docs": "received", "license": "received"},
        "situation": {"agent": "agent"}}]})

    item_code: Text
    applicant: Applicant
    materials: dict[str, Literal["missing", "received"]] = {}
    defer: list[Deferral] = Field(default=[], max_length=50)
    competent_region: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")] | None = None
    mode: value_of(Mode) | None = None  # type: ignore[valid-type]
    commitment: Commitment | None = None
    # 事项情形: question id → the chosen option's id (GET /api/v1/guide/{code} lists them).
    situation: dict[Annotated[str, StringConstraints(max_length=64)],
                    Annotated[str, StringConstraints(max_length=64)]] = Field(default={}, max_length=20)


class TriggerBody(_Body):
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"comment": "材料齐全, 同意移交办理地审核"}]})

    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None
    defer: list[Deferral] = Field(default=[], max_length=50)
    commitment: Commitment | None = None
    data: dict[str, Any] | None = None


class ExtensionRequest(_Body):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000,
                                             pattern=NON_BLANK)]


class Withdrawal(_Body):
    code: Annotated[str, StringConstraints(min_length=6, max_length=32, pattern=r"^[0-9A-Za-z]+$")]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000,
                                             pattern=NON_BLANK)]


class MaterialUpdate(_Body):
    status: value_of(MaterialStatus)  # type: ignore[valid-type]
    promise: Annotated[str, StringConstraints(max_length=1000)] | None = None


class Reassign(_Body):
    counter_id: Text
    clerk_id: int = Field(ge=1, le=2**31 - 1)
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = None
    # companion: the applicant's companion clerk; step: the current step at counter_id (default:
    # whichever the counter's current step is).
    kind: Literal["companion", "step"] | None = None


class Revocation(_Body):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000,
                                             pattern=NON_BLANK)]
