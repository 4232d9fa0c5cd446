"""Case endpoints for clerks: intake, view, triggers, materials, assignment, queue, history."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Header, Query, Request, Response
from sqlmodel import Session

from api.contract import ETAG, LOCATION, answer_headers, not_modified, problems
from api.deps import ActorDep, SessionDep, VersionDep, require_role
from api.etags import IfNoneMatchHeader, case_etag, matches
from api.etags import not_modified as not_modified_answer
from api.models import Case, CreatedCase, History, Queue
from api.routes.events import LINK_HEADER, json_answer, next_link
from api.routing import Router, grouped
from api.schemas import CaseCreate, ExtensionRequest, MaterialUpdate, Reassign, TriggerBody
from core import wire
from engine import assignment, dashboard, idempotency, intake, lifecycle, search, views
from engine.access import require_case_reader
from engine.actors import Actor
from engine.advance import advance, load_case
from engine.errors import Forbidden, InvalidInput
from storage.rows import CaseRow

router = Router(prefix="/api/v1/cases", tags=["cases"])
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


def _case_response(session: Session, case: CaseRow, actor: Actor, status: int = 200,
                   extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
    """The case as this clerk sees it, with its ETag. Encoded once, by orjson: FastAPI's generic
    encoder walked the view twice and cost more than the transition itself."""
    body = wire.dumps(views.case_view(session, case, actor) | (extra or {}))
    return Response(body, status_code=status, media_type="application/json",
                    headers={"ETag": case_etag(case["version"], body), **(headers or {})})


def _replay(hit: tuple[int, str]) -> Response:
    """A stored answer to a retried request (Idempotency-Key), byte for byte."""
    version = orjson.loads(hit[1]).get("version")
    return Response(hit[1], status_code=hit[0], media_type="application/json",
                    headers={"ETag": case_etag(version, hit[1].encode())} if version is not None else None)


@router.post("", status_code=201, response_model=CreatedCase,
             responses={**answer_headers(201, ETAG, LOCATION), **problems(403)})
@grouped
def create_case(body: CaseCreate, session: SessionDep, actor: ActorDep, key: KeyHeader = None) -> Any:
    """收件: 新建办件"""
    req = idempotency.request_hash("create", body.model_dump())
    if key and actor.id and (hit := idempotency.replay(session, actor.id, key, req)):
        return _replay(hit)
    case, code = intake.create_case(
        session, actor, body.item_code, body.applicant.model_dump(exclude_none=True),
        dict(body.materials), body.competent_region, body.mode,
        body.commitment.model_dump() if body.commitment else None,
        [d.model_dump() for d in body.defer], dict(body.situation),
    )
    out = _case_response(session, case, actor, 201, {"query_code": code},
                         {"Location": f"/api/v1/cases/{case['number']}"})
    if key and actor.id:
        # The query code opens the progress query: kept sealed, never in the stored body.
        idempotency.remember(session, actor.id, key, req, 201, bytes(out.body).decode(), seal=("query_code",))
    return out


@router.get("", response_model=Queue, responses={200: {"headers": LINK_HEADER}})
def list_queue(request: Request, response: Response, session: SessionDep, actor: ActorDep,
               counter: str | None = None, state: str | None = None, item: str | None = None,
               assignee: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None, overdue: bool | None = None,
               cursor: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50,
               q: Annotated[str | None, Query(max_length=search.MAX_QUERY * 2)] = None,
               finished: bool | None = None) -> Any:
    """窗口待办队列与办件检索

    带 q 时按办件编号、申请人名称、证件号码或统一社会信用代码 (全号或末几位)、电话检索
    本人可查看的全部办件 (含已办结, 可用 finished 筛选), 最相符者在前。
    """
    search.check_filters(session, state=state, item=item)
    if q is not None:
        return search.search(session, actor, q, finished=finished, limit=limit)
    counter = counter or actor.counter_id
    if counter is None:
        raise InvalidInput("counter", "督查账号须指定要查看的窗口")
    if counter != actor.counter_id and "supervisor" not in actor.roles:
        raise Forbidden("只能查看本窗口的队列", missing=["role:supervisor"])
    dashboard.check_counter_visible(session, actor, counter)
    page = views.queue(session, counter, state=state, item=item, assignee=assignee,
                       overdue=overdue, cursor=cursor, limit=limit)
    if page["next_cursor"]:
        response.headers["Link"] = next_link(request, "cursor", page["next_cursor"])
    return page


@router.get("/{number}", response_model=Case, responses={**answer_headers(200, ETAG), **not_modified(ETAG)})
def get_case(number: str, session: SessionDep, actor: ActorDep, if_none_match: IfNoneMatchHeader = None) -> Any:
    """查看办件

    带 If-None-Match (上次的 ETag) 轮询: 办件的表示 (含期限状态、可执行的操作) 未变时答复 304。"""
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    out = _case_response(session, case, actor, headers={"Cache-Control": "private, no-cache"})
    if matches(if_none_match, out.headers["ETag"]):
        return not_modified_answer(out.headers["ETag"], "private, no-cache")
    return out


@router.get("/{number}/history", response_model=History, responses={200: {"headers": LINK_HEADER}})
def get_history(number: str, request: Request, session: SessionDep, actor: ActorDep,
                cursor: Annotated[str | None, Query(max_length=10, pattern=r"^[0-9]{1,10}$",
                                                    description="上一页的 next_cursor (事件序号)")] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> Any:
    """办件历史 (哈希链)

    按序号排列; 一页至多 `limit` 条, 还有更多时 `next_cursor` 给出下一页的起点 (亦见 Link)。"""
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    events = views.history(session, case["id"], int(cursor or 0), limit)
    more = len(events) == limit
    page = {"items": events, "next_cursor": str(events[-1]["seq"]) if more else None}
    return json_answer(page, headers={"Link": next_link(request, "cursor", page["next_cursor"])} if more else None)


@router.post("/{number}/triggers/{trigger}", response_model=Case,
             responses={**answer_headers(200, ETAG), **problems(409)})
@grouped
def fire_trigger(number: str, trigger: str, session: SessionDep, actor: ActorDep,
                 version: VersionDep, body: TriggerBody | None = None, key: KeyHeader = None) -> Any:
    """执行办件操作 (受理、审核、移交…)"""
    body = body or TriggerBody()
    if key and actor.id:
        req = idempotency.request_hash("trigger", number, trigger, version, body.model_dump())
        if hit := idempotency.replay(session, actor.id, key, req):
            return _replay(hit)
    payload = body.model_dump(exclude_none=True)
    payload["defer"] = payload.get("defer") or []
    case = advance(session, number, trigger, actor, payload, expected_version=version)
    out = _case_response(session, case, actor)
    if key and actor.id:
        idempotency.remember(session, actor.id, key, req, 200, bytes(out.body).decode())
    return out


@router.put("/{number}/materials/{material_id}", response_model=Case,
             responses={**answer_headers(200, ETAG), **problems(409)})
@grouped
def set_material(number: str, material_id: str, body: MaterialUpdate, session: SessionDep,
                 actor: ActorDep, version: VersionDep) -> Any:
    """登记材料状态 (已收、缺、容缺)"""
    case = intake.set_material(session, number, actor, material_id, body.status,
                               version, body.promise)
    return _case_response(session, case, actor)


@router.post("/{number}/assignee", response_model=Case,
             responses={**answer_headers(200, ETAG), **problems(409)})
@grouped
def hand_over(number: str, body: Reassign, session: SessionDep, actor: ActorDep,
              version: VersionDep) -> Any:

    """转交给同事

    转交: the companion's part, or the current step at a counter, to a named colleague."""
    require_role(actor, "supervisor", "clerk", "reviewer", "approver", "inspector")
    if "supervisor" in actor.roles:
        dashboard.check_case_visible(session, actor, load_case(session, number))
    case = assignment.hand_over(session, number, actor, body.counter_id, body.clerk_id,
                                version, body.comment, body.kind)
    return _case_response(session, case, actor)


@router.post("/{number}/extension", response_model=Case,
             responses={**answer_headers(200, ETAG), **problems(409)})
@grouped
def extend_case(number: str, body: ExtensionRequest, session: SessionDep, actor: ActorDep,
                version: VersionDep) -> Any:

    """延期 (审批人员, 一次)

    延期: the competent counter's approver extends the legal period once, with a reason."""
    case = lifecycle.extend(session, number, actor, body.reason, version)
    return _case_response(session, case, actor)


@router.post("/{number}/claim", response_model=Case,
             responses={**answer_headers(200, ETAG), **problems(409)})
@grouped
def claim_step(number: str, session: SessionDep, actor: ActorDep, version: VersionDep) -> Any:

    """认领当前环节

    认领: take the current step at your counter."""
    case = assignment.claim(session, number, actor, version)
    return _case_response(session, case, actor)


@router.delete("/{number}/claim", response_model=Case,
             responses={**answer_headers(200, ETAG), **problems(409)})
@grouped
def release_step(number: str, session: SessionDep, actor: ActorDep, version: VersionDep) -> Any:

    """释放认领

    释放认领: give the step back to the counter's queue."""
    case = assignment.release(session, number, actor, version)
    return _case_response(session, case, actor)
