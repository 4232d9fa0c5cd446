"""A case's written notices and certificates (文书): the list, with each one's download."""

from __future__ import annotations

from typing import Any

from api.deps import ActorDep, SessionDep
from api.models import CaseDocuments
from api.routing import Router
from engine import documents_read

router = Router(prefix="/api/v1/cases", tags=["documents"])


@router.get("/{number}/documents", summary="列出案件文书和证照", response_model=CaseDocuments)
def list_documents(number: str, session: SessionDep, actor: ActorDep) -> Any:
    """收件凭证、受理通知书、补正材料通知书 … 和证照, 按签发先后; 重新打印即下载同一文件 (同一文号)."""
    return {"items": documents_read.entries(session, number, actor), "next_cursor": None}
