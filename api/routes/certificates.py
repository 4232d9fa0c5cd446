"""电子证照库: a holder's certificates for clerks (GB/T 36903 metadata), and revocation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import LibraryCertificate, LibraryPage
from api.routing import Router
from api.schemas import Revocation
from core import clock
from engine import certificates
from engine.errors import Forbidden

router = Router(prefix="/api/v1/certificates", tags=["certificates"])


def _clerk(actor: Any) -> None:
    if actor.counter_id is None and "supervisor" not in actor.roles:
        raise Forbidden("电子证照库仅供窗口工作人员和督查人员查询", missing=["role:clerk|supervisor"])


@router.get("", response_model=LibraryPage, responses=problems(403))
def search_library(session: SessionDep, actor: ActorDep,
            holder_code: Annotated[str, Query(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$",
                                              description="持证主体代码: 统一社会信用代码或公民身份号码")],
            type: Annotated[str | None, Query(max_length=64, description="证照类型, 如 营业执照")] = None,
            cursor: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")] = None,
            limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """查询电子证照库: 持证主体的全部证照 (含已过期、已撤销), 按颁发先后"""
    _clerk(actor)
    items, next_cursor = certificates.library(session, holder_code, cert_type=type, cursor=cursor, limit=limit)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/{number}/revocation", response_model=LibraryCertificate, responses=problems(403, 404, 409))
def revoke_certificate(number: str, body: Revocation, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """撤销证照: 发证窗口的审批签发人员或督查人员; 核验页与证照库随即显示「已撤销」"""
    cert = certificates.revoke(session, number, actor, body.reason)
    return certificates.metadata(cert, clock.today())
