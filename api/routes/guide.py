"""办事指南 (public, no login): the catalog's guides, one item's guide with its exact one-time
list for the chosen 情形, and the Chinese search 「我要办 X 需要什么」."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import _cursor, _Out
from api.routes.public import limit_client
from api.routing import Router
from api.schemas import Applicant
from engine import guide, guide_prereview
from engine.errors import InvalidInput

router = Router(prefix="/api/v1/guide", tags=["public"])


class GuideCounter(_Out):
    name: str
    region: str
    takes_applications: bool
    services: list[str]


class GuideFaq(_Out):
    q: str
    a: str


class GuideSummary(_Out):
    code: str
    name: str
    summary: str
    case_type: str
    legal_days: int
    promised_days: int
    modes: list[str]
    certificate: str | None
    fees: str
    conditions: list[str]
    legal_basis: list[str]
    faq: list[GuideFaq]
    aliases: list[str]
    counters: list[GuideCounter]
    bundle: bool
    departments: list[str]


class GuideList(_Out):
    items: list[GuideSummary]
    next_cursor: str | None = _cursor()


class GuideOption(_Out):
    id: str
    label: str


class GuideSituation(_Out):
    id: str
    question: str
    options: list[GuideOption]


class GuideAnswer(_Out):
    id: str
    question: str
    answer: str
    label: str


class GuideMaterial(_Out):
    id: str
    name: str
    required: bool
    form: str
    copies: int
    deferrable: bool
    from_library: bool
    library: str | None = Field(description="免提交时从电子证照库调取的证照类型")
    situational: bool
    blank_form: str | None
    sample: str | None
    blank_form_url: str | None = Field(description="空白表格的下载地址")
    sample_url: str | None = Field(description="填写示例的下载地址")


class GuideFile(_Out):
    material_id: str
    material: str
    kind: str = Field(description="blank_form (空白表格) 或 sample (填写示例)")
    label: str
    name: str
    url: str


class ItemGuide(GuideSummary):
    situations: list[GuideSituation]
    answers: list[GuideAnswer] | None
    path: list[str] | None = Field(description="所选情形决定的办理环节 (如 免于现场核查)")
    materials: list[GuideMaterial]
    files: list[GuideFile] = Field(description="事项附带的空白表格和填写示例")


class SearchResult(_Out):
    item_code: str
    name: str
    score: float
    materials: list[str]
    counters: list[str]


class SearchAnswer(_Out):
    results: list[SearchResult]


Answers = Annotated[list[Annotated[str, Query(max_length=130)]] | None,
                    Query(max_length=20, description="情形回答, 每项为 问题id:选项id (须回答全部问题)")]


def parse_answers(raw: list[str] | None) -> dict[str, str] | None:
    if raw is None:
        return None
    out = {}
    for i, pair in enumerate(raw):
        q, sep, o = pair.partition(":")
        if not sep or not q or not o:
            raise InvalidInput(f"situation[{i}]", "须为 问题id:选项id")
        out[q] = o
    return out


@router.get("", response_model=GuideList)
def list_guides(session: SessionDep) -> Any:
    """办事指南目录"""
    return {"items": guide.catalog_guide(session), "next_cursor": None}


@router.get("/search", response_model=SearchAnswer)
def search_guide(session: SessionDep, q: Annotated[str, Query(min_length=1, max_length=200)],
                 limit: Annotated[int, Query(ge=1, le=20)] = 5) -> Any:
    """我要办 X 需要什么: 按中文问题或说法排序的事项"""
    return {"results": guide.search(session, q, limit)}


@router.get("/{code}", response_model=ItemGuide, responses=problems(404))
def get_guide(code: str, session: SessionDep, situation: Answers = None) -> Any:
    """某事项的办事指南; 给出情形回答时, 材料为一次性告知的准确清单"""
    return guide.item_guide(session, code, parse_answers(situation))


# -- 要件预审 ----------------------------------------------------------------------------------------

Short = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


DRAFT_BASE64_CHARS = -(-guide_prereview.MAX_DRAFT_BYTES // 3) * 4 + 4


class Draft(_In):
    file_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    # Up to the engine's own per-draft limit (refused there, 413, naming the draft), in base64.
    content_base64: Annotated[str, StringConstraints(min_length=4, max_length=DRAFT_BASE64_CHARS)]


class PreReviewCreate(_In):
    item_code: Short
    phone: Annotated[str, StringConstraints(min_length=6, max_length=20)]
    situation: dict[Short, Short] = Field(default={}, max_length=20)
    drafts: dict[Short, Draft] = Field(min_length=1, max_length=30)


class PreReviewCreated(_Out):
    code: str = Field(description="预审码: 申请人凭此查看预审意见, 到窗口时出示")


class PreReviewVersion(_Out):
    version: int
    file_name: str
    uploaded_at: datetime
    verdict: str | None
    verdict_label: str | None
    comment: str | None = Field(description="窗口人员对这一版的意见")
    reviewed_at: datetime | None
    kept: bool = Field(description="草稿文件仍在 (转为办件或过期后删除)")


class PreReviewMaterial(_Out):
    id: str
    name: str
    uploaded: bool
    file_name: str | None
    version: int | None = Field(description="当前 (最新) 一版的版本号")
    uploaded_at: datetime | None
    verdict: str | None
    verdict_label: str | None
    comment: str | None
    reviewed_at: datetime | None
    can_upload: bool = Field(description="申请人可 (重新) 上传: 未上传或需修改")
    earlier: list[PreReviewVersion] = Field(description="此前各版及其意见, 新的在前")


class PreReviewView(_Out):
    code: str
    item_code: str
    item_name: str
    status: str
    status_label: str
    case_number: str | None
    answers: list[GuideAnswer]
    materials: list[PreReviewMaterial]


class PreReviewDrafts(_In):
    drafts: dict[Short, Draft] = Field(min_length=1, max_length=30)


class DraftReview(_In):
    verdict: Annotated[str, StringConstraints(pattern="^(ok|redo)$")]
    comment: Annotated[str, StringConstraints(max_length=500)] | None = None


class PreReviewIntake(_In):
    applicant: Applicant


class PreReviewCase(_Out):
    number: str
    query_code: str


def _decode(drafts: dict[str, Draft]) -> dict[str, tuple[str, bytes]]:
    out = {}
    for mid, d in drafts.items():
        try:
            out[mid] = (d.file_name, base64.b64decode(d.content_base64, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidInput(f"drafts.{mid}.content_base64", "不是有效的 base64") from None
    return out


# Drafts are photos: a pre-review carries them in its one body, before anyone signs in (the
# applicant has no login); the per-client limit answers floods after the body.
router.allow_larger(r"^/api/v1/guide/prereviews(/[^/]+/drafts)?$", lambda: guide_prereview.MAX_BODY_BYTES,
                    uncredentialed=True)


@router.post("/prereviews", status_code=201, response_model=PreReviewCreated, responses=problems(413, 429, 503))
def create_prereview(body: PreReviewCreate, request: Request, session: SessionDep) -> Any:
    """要件预审: 申请人按材料清单上传草稿 (无需登录, 不产生办件编号, 不计时)"""
    limit_client(request)
    return {"code": guide_prereview.submit(session, body.item_code, body.phone, dict(body.situation),
                                           _decode(body.drafts))}


@router.get("/prereviews/{code}", response_model=PreReviewView, responses=problems(404, 429))
def get_prereview(code: str, request: Request, session: SessionDep) -> Any:
    """预审意见: 每份材料是否合格及修改意见"""
    limit_client(request)
    return guide_prereview.view(session, code)


@router.post("/prereviews/{code}/drafts", response_model=PreReviewView, responses=problems(404, 409, 413, 429, 503))
def resubmit_drafts(code: str, body: PreReviewDrafts, request: Request, session: SessionDep) -> Any:
    """重新上传需修改的预审草稿 (凭预审码)

    补传或重传被标为需修改的草稿: 新的一版回到待预审, 此前的版本与意见保留。"""
    limit_client(request)
    return guide_prereview.resubmit(session, code, _decode(body.drafts))


@router.post("/prereviews/{code}/materials/{material_id}", response_model=PreReviewView,
             responses=problems(403, 404, 409))
def review_draft(code: str, material_id: str, body: DraftReview, session: SessionDep, actor: ActorDep) -> Any:
    """窗口人员对一份草稿给出预审意见"""
    return guide_prereview.review(session, actor, code, material_id, body.verdict, body.comment)


@router.post("/prereviews/{code}/case", status_code=201, response_model=PreReviewCase,
             responses=problems(403, 404, 409, 503))
def prereview_to_case(code: str, body: PreReviewIntake, session: SessionDep, actor: ActorDep) -> Any:
    """收件: 预审转为办件, 合格的草稿作为该材料的扫描件带入"""
    case, query_code = guide_prereview.to_case(session, actor, code, body.applicant.model_dump(exclude_none=True))
    return {"number": case["number"], "query_code": query_code}
