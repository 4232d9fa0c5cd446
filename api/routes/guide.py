"""办事指南 (public, no login): the catalog's guides, one item's guide with its exact one-time
list for the chosen 情形, and the Chinese search 「我要办 X 需要什么」."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from api.contract import problems
from api.deps import SessionDep
from api.models import _cursor, _Out
from api.routing import Router
from engine import guide
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
    situational: bool
    blank_form: str | None
    sample: str | None


class ItemGuide(GuideSummary):
    situations: list[GuideSituation]
    answers: list[GuideAnswer] | None
    materials: list[GuideMaterial]


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
