"""The admin API of the alliance directory (联盟目录): regions, units, counters, their item lists
and clerks, for the ``directory_admin`` role.

Thin: each change is ``engine.directory_manage.edit``: the record added or replaced in the
current document, the whole document checked as an import checks it, and the result imported as
the next version (content-hashed, diffable with ``tongban directory diff --from N --to M``).
Removing a counter or a clerk is a new version too, as an import that no longer lists it: the
counter keeps its row (cases point at it) but loses its item list, so no case is routed to it; the
clerk is deactivated and its tokens revoked. A clerk created here gets a token only through the
command line (``tongban directory token NAME --counter ID``): tokens never travel in an answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.contract import problems
from api.deps import ActorDep, SessionDep, require_role
from api.models import Instant
from api.routing import Router
from engine import directory_manage
from engine.errors import NotFound

router = Router(prefix="/api/v1/directory", tags=["directory"])
ROLE = "directory_admin"

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RegionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}$")]
ItemCode = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Kind = Literal["staffed", "self_service", "guide_only"]
ItemRoles = dict[ItemCode, Annotated[list[RoleName], Field(min_length=1, max_length=8)]]
CounterPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="窗口编号")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegionIn(_Body):
    name: Name


class UnitIn(_Body):
    name: Name
    code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{18}$")] = Field(description="统一社会信用代码")
    region: RegionCode
    abbr: Annotated[str, StringConstraints(min_length=1, max_length=16)] = Field(description="文号中的机关代字")
    format: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="文号格式, 如 {abbr}{word}〔{year}〕{seq:05d}号 (不填: 目录的统一格式)")
    words: dict[Annotated[str, StringConstraints(min_length=1, max_length=32)],
                Annotated[str, StringConstraints(min_length=1, max_length=16)]] = {}


Hours = Annotated[str, StringConstraints(min_length=11, max_length=200)]
Capacity = Annotated[int, Field(ge=1, le=9999)]
GroupLetter = Literal["A", "B", "C", "D", "E"]


class ServiceRule(_Body):
    """取号机对一个事项的规则。"""

    hours: Hours | None = Field(default=None, description="该事项的取号时间 (替代窗口的), 如 09:00-11:30")
    capacity: Capacity | None = Field(default=None, description="该事项每日现场号源")
    group: GroupLetter | None = Field(default=None, description="该事项所在的取号分组")


class CounterIn(_Body):
    name: Name
    region: RegionCode
    unit: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")] | None = Field(
        default=None, description="所属成员单位编号")
    kind: Kind = Field(default="staffed", description="staffed 有人值守, self_service 自助终端, guide_only 仅远程指导")
    supervised_by: Ident | None = Field(default=None, description="自助终端的值守窗口 (仅 self_service)")
    items: ItemRoles = Field(default={},
                             description="事项编码 → 职责 (intake 收件, competent 办理, guide 仅指导, 或部门职责)")
    hours: Hours | None = Field(default=None, description="取号时间 (工作日), 如 09:00-12:00,13:30-17:00")
    capacity: Capacity | None = Field(default=None, description="每日现场号源")
    groups: Annotated[dict[GroupLetter, Annotated[str, StringConstraints(min_length=1, max_length=60)]],
                      Field(max_length=5)] | None = Field(default=None, description="取号分组: 字母 → 名称")
    service: Annotated[dict[Ident, ServiceRule], Field(max_length=2000)] | None = Field(
        default=None, description="事项编码 → 该事项的取号规则")


class CounterItemsIn(_Body):
    items: ItemRoles


class ClerkIn(_Body):
    name: Name
    counter: Ident | None = Field(default=None, description="所在窗口 (督查人员可无)")
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=8)]
    regions: Annotated[list[RegionCode], Field(max_length=100)] = Field(default=[], description="督查区域 (仅督查人员)")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DirectoryChange(_Out):
    """目录的一次修改: 新的目录版本及其变化。"""

    version: int = Field(description="修改后的目录版本号 (未变化时为当前版本)")
    changed: bool
    content_hash: str
    changes: list[str] = Field(description="变化: + 新增, - 删除, ~ 修改")


class RegionEntry(_Out):
    code: str
    name: str


class UnitEntry(_Out):
    id: str
    name: str
    code: str
    region: str
    abbr: str
    format: str
    words: dict[str, str]


class CounterEntry(_Out):
    id: str
    name: str
    unit: str
    region: str
    kind: Kind
    supervised_by: str | None = Field(default=None, description="自助终端的值守窗口")
    items: dict[str, list[str]]
    hours: str | None = Field(default=None, description="取号时间 (工作日)")
    capacity: int | None = Field(default=None, description="每日现场号源")
    groups: dict[str, str] | None = Field(default=None, description="取号分组: 字母 → 名称")
    service: dict[str, dict[str, Any]] | None = Field(default=None, description="事项编码 → 取号规则")


class ClerkEntry(_Out):
    name: str
    counter: str | None
    roles: list[str]
    regions: list[str]


class Directory(_Out):
    """当前的联盟目录。"""

    version: int | None = Field(description="目录版本号; 尚未导入过时为 null")
    content_hash: str | None
    imported_at: Instant | None
    imported_by: str | None
    regions: list[RegionEntry]
    units: list[UnitEntry]
    counters: list[CounterEntry]
    clerks: list[ClerkEntry]


class DirectoryVersion(_Out):
    version: int
    content_hash: str
    imported_at: Instant
    imported_by: str
    source: str


class DirectoryVersionList(_Out):
    items: list[DirectoryVersion]
    next_cursor: str | None = Field(description="目录版本一次全部列出, 总为 null")


def _changed(result: directory_manage.Imported) -> dict[str, Any]:
    return {"version": result.version, "changed": result.changed, "content_hash": result.content_hash,
            "changes": result.changes}


@router.get("", response_model=Directory)
def get_directory(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """查看当前联盟目录"""
    require_role(actor, ROLE)
    current = directory_manage.latest(session)
    doc = current.document if current else directory_manage.empty()
    return {"version": current.version if current else None,
            "content_hash": current.content_hash if current else None,
            "imported_at": current.imported_at if current else None,
            "imported_by": current.imported_by if current else None,
            **{name: doc.get(name, []) for name in ("regions", "units", "counters", "clerks")}}


@router.get("/versions", response_model=DirectoryVersionList)
def list_directory_versions(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """联盟目录的版本历史"""
    require_role(actor, ROLE)
    return {"items": [{"version": v.version, "content_hash": v.content_hash,
                       "imported_at": v.imported_at, "imported_by": v.imported_by,
                       "source": v.source} for v in directory_manage.versions(session)],
            "next_cursor": None}


@router.put("/regions/{code}", response_model=DirectoryChange)
def set_region(code: Annotated[str, Path(pattern=r"^\d{6}$", description="行政区划代码")], body: RegionIn,
               session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """新增或修改行政区划"""
    require_role(actor, ROLE)
    return _changed(directory_manage.edit(session, actor.name, "regions", {"code": code, "name": body.name}))


@router.put("/units/{unit_id}", response_model=DirectoryChange)
def set_unit(unit_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", description="成员单位编号")],
             body: UnitIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """新增或修改成员单位"""
    require_role(actor, ROLE)
    record = {"id": unit_id, **body.model_dump(exclude_none=True)}
    return _changed(directory_manage.edit(session, actor.name, "units", record))


@router.put("/counters/{counter_id}", response_model=DirectoryChange)
def set_counter(counter_id: CounterPath, body: CounterIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """新增或修改窗口 (类型与事项清单)"""
    require_role(actor, ROLE)
    record = {"id": counter_id, **body.model_dump(), "unit": body.unit or ""}
    return _changed(directory_manage.edit(session, actor.name, "counters", record))


@router.put("/counters/{counter_id}/items", response_model=DirectoryChange)
def set_counter_items(counter_id: CounterPath, body: CounterItemsIn, session: SessionDep,
                      actor: ActorDep) -> dict[str, Any]:
    """设置窗口的事项清单"""
    require_role(actor, ROLE)
    record = directory_manage.record_of(session, "counters", counter_id)
    if record is None:
        raise NotFound(f"目录中没有窗口 {counter_id}")
    return _changed(directory_manage.edit(session, actor.name, "counters", record | {"items": body.items}))


@router.post("/clerks", response_model=DirectoryChange)
def set_clerk(body: ClerkIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """新增或修改工作人员及其角色

    A clerk is the name at a counter: the same name and counter again changes that clerk's roles
    (and a supervisor's regions). Its token: ``tongban directory token NAME --counter ID``."""
    require_role(actor, ROLE)
    return _changed(directory_manage.edit(session, actor.name, "clerks", body.model_dump()))


@router.delete("/counters/{counter_id}", response_model=DirectoryChange, responses=problems(409))
def remove_counter(counter_id: CounterPath, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """移除窗口 (不再分派办件; 仍有工作人员或自助终端指向它时拒绝)"""
    require_role(actor, ROLE)
    return _changed(directory_manage.remove(session, actor.name, "counters", counter_id))


@router.delete("/clerks/{name}", response_model=DirectoryChange)
def remove_clerk(name: Annotated[str, Path(min_length=1, max_length=100, description="姓名")],
                 session: SessionDep, actor: ActorDep,
                 counter: Annotated[Ident | None, Query(description="所在窗口 (督查人员可无)")] = None,
                 ) -> dict[str, Any]:
    """停用工作人员 (从目录移除, 其令牌全部吊销)"""
    require_role(actor, ROLE)
    return _changed(directory_manage.remove(session, actor.name, "clerks", f"{name}@{counter or ''}"))
