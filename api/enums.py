"""The fixed vocabularies of the API, each one named schema that every operation shares.

A ``Literal`` is inlined where it is used, so a generated client made a new type per field
(``CaseModeType0``, ``QueueEntryStatus`` …); an ``Enum`` is one component (``Mode``) with its
members' names (``x-enum-varnames``) and meanings beside the values. Request bodies take them
through ``value_of``: the schema names the enum, the engine gets the plain value.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, TypeVar, get_args

from pydantic import AfterValidator, GetJsonSchemaHandler

from states.schema import ModeName


class _Named(StrEnum):
    """A string vocabulary whose schema carries each member's name and zh-CN meaning."""

    @classmethod
    def meanings(cls) -> dict[str, str]:
        return {}

    @classmethod
    def __get_pydantic_json_schema__(cls, core: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        schema = handler.resolve_ref_schema(handler(core))
        schema["x-enum-varnames"] = [m.name for m in cls]
        meanings = cls.meanings()
        schema["x-enum-descriptions"] = [meanings.get(m.value, m.value) for m in cls]
        return schema


class Mode(_Named):
    """通办模式."""

    ONLINE = "全程网办"
    PROXY = "异地代收代办"
    JOINT = "多地联办"


class MaterialStatus(_Named):
    """材料状态."""

    MISSING = "missing"
    RECEIVED = "received"
    DEFERRED = "deferred"

    @classmethod
    def meanings(cls) -> dict[str, str]:
        return {"missing": "缺", "received": "已收", "deferred": "容缺 (承诺后补)"}


class DeadlineStatus(_Named):
    """期限状态 (每日巡查计算)."""

    NORMAL = "正常"
    WARNING = "预警"
    OVERDUE = "逾期"


class WaybillStatus(_Named):
    """运单状态."""

    CREATED = "created"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    RETURNED = "returned"

    @classmethod
    def meanings(cls) -> dict[str, str]:
        return {"created": "已下单", "in_transit": "运输中", "delivered": "已签收", "returned": "已退回"}


class ParticipantRole(_Named):
    """视频会议参会者的身份."""

    CLERK = "clerk"
    APPLICANT = "applicant"
    APPROVER = "approver"
    EXPERT = "expert"

    @classmethod
    def meanings(cls) -> dict[str, str]:
        return {"clerk": "窗口工作人员", "applicant": "申请人", "approver": "远程审批人员", "expert": "专家"}


E = TypeVar("E", bound=_Named)


def value_of(enum: type[E]) -> Any:
    """The enum in the schema, its plain string in the validated body (``use_enum_values`` would
    inline the enum in every request schema instead of naming it)."""
    return Annotated[enum, AfterValidator(lambda member: member.value)]


# The item language is where modes are defined: the API's enum must say the same.
assert {m.value for m in Mode} == set(get_args(ModeName)), "Mode differs from states.schema.ModeName"
