"""A case's written notices and certificates (文书): the list, with each one's download."""

from __future__ import annotations

from typing import Any

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import CaseDocuments, DrawingRequested
from api.routing import Router
from engine import document_drawing, documents_read

router = Router(prefix="/api/v1/cases", tags=["documents"])


@router.get("/{number}/documents", summary="列出办件文书和证照", response_model=CaseDocuments)
def list_documents(number: str, session: SessionDep, actor: ActorDep) -> Any:
    """收件凭证、受理通知书、补正材料通知书 … 和证照, 按签发先后; 重新打印即下载同一文件 (同一文号)."""
    return {"items": documents_read.entries(session, number, actor), "next_cursor": None}


@router.post("/{number}/documents/{kind}/drawing", summary="出具文书 (立即制作)", status_code=202,
             response_model=DrawingRequested, responses=problems(404))
def request_drawing(number: str, kind: str, session: SessionDep, actor: ActorDep) -> Any:
    """收件凭证在办件离开收件环节时按各材料页数制作; 需要提前打印时调用本接口立即制作 (按当时已扫描的页数).
    已制作的文书不会重新制作 (同一文号, 同一文件)."""
    return {"kind": kind, "queued": document_drawing.request_drawing(session, number, actor, kind)}
