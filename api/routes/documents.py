"""Scanned pages and evidence of a case: upload (multipart or raw body), list, reorder,
withdraw, download. Thin: the rules live in ``engine.scans``."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import tempfile
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO
from urllib.parse import quote, unquote

from fastapi import Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.contract import problems
from api.deps import ActorDep, OptionalVersionDep, SessionDep, VersionDep
from api.models import EvidenceList, Page, PageList, Presigned, binary
from api.routing import Router
from core.settings import get_settings
from engine import scans
from engine.errors import NotFound
from engine.scan_validation import UploadRefused, UploadTooLarge
from storage.object_factory import get_store
from storage.objects import ObjectStore

router = Router(prefix="/api/v1/cases", tags=["documents"])
PAGES = "/{number}/materials/{material_id}/pages"
UPLOAD_PATH = r"/api/v1/cases/[^/]+/materials/[^/]+/pages"
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file


async def get_object_store() -> ObjectStore:
    return get_store()  # async: a dependency this cheap should not cost a worker-thread hop


StoreDep = Annotated[ObjectStore, Depends(get_object_store)]


# Uploads may exceed the global body limit up to ``max_upload_bytes``.
router.allow_larger(UPLOAD_PATH, lambda: get_settings().max_upload_bytes + MULTIPART_OVERHEAD)


def page_view(number: str, p: dict[str, Any]) -> dict[str, Any]:
    base = f"/api/v1/cases/{number}/materials/{p['material_id']}/pages/{p['id']}"
    hidden = {"bucket", "key", "thumbnail_key", "case_id", "case_version"}
    return {k: v for k, v in p.items() if k not in hidden} | {
        "content_url": f"{base}/content",
        "thumbnail_url": f"{base}/thumbnail" if p.get("thumbnail_key") else None,
    }


def _evidence_view(number: str, e: dict[str, Any]) -> dict[str, Any]:
    hidden = {"bucket", "key", "case_id"}
    return {k: v for k, v in e.items() if k not in hidden} | {
        "content_url": f"/api/v1/cases/{number}/evidence/{e['id']}/content"}


@dataclass
class Upload:
    data: bytes | BinaryIO
    name: str | None
    field: str  # the field a refusal names
    sha256: str | None = None  # hashed as it arrived (raw bodies)

    def close(self) -> None:
        if not isinstance(self.data, bytes):
            self.data.close()


async def _read_upload(request: Request) -> Upload:
    """The uploaded bytes with the declared name. A raw body is hashed as it arrives and held in
    memory up to ``IN_MEMORY`` (beyond, spooled to disk); an optional ``Content-Digest:
    sha-256=:<base64>:`` (RFC 9530) is checked against what arrived."""
    limit = get_settings().max_upload_bytes
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        if not request.headers.get("content-length", "").isdigit():
            raise UploadRefused("Content-Length", "length_required", "表单上传须带 Content-Length")
        form = await request.form(max_files=1, max_fields=5)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise UploadRefused("file", "missing", "表单中缺少文件字段 file")
        if file.size is not None and file.size > limit:
            raise UploadTooLarge("file", "too_large", f"文件超过大小上限 {limit} 字节")
        return Upload(file.file, file.filename, "file")  # type: ignore[arg-type]
    if not content_type:
        raise UploadRefused("Content-Type", "missing_content_type",
                            "原始请求体上传须带 Content-Type (如 image/jpeg), 或使用 multipart 表单")
    claimed = _content_digest(request.headers.get("content-digest"))
    raw = request.headers.get("x-file-name") or request.query_params.get("name")
    h, size, chunks = hashlib.sha256(), 0, []
    spool: BinaryIO | None = None
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked bodies have no Content-Length for the middleware to check
            if spool is not None:
                spool.close()
            raise UploadTooLarge("body", "too_large", f"文件超过大小上限 {limit} 字节")
        h.update(chunk)
        if spool is not None:
            spool.write(chunk)
        elif size > scans.IN_MEMORY:
            spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by Upload.close)
            spool.writelines([*chunks, chunk])
            chunks = []
        else:
            chunks.append(chunk)
    digest = h.hexdigest()
    if claimed is not None and claimed != digest:
        if spool is not None:
            spool.close()
        raise UploadRefused("Content-Digest", "digest_mismatch",
                            "收到的内容与 Content-Digest 不符 (传输中被改动或截断), 未保存")
    if spool is not None:
        spool.seek(0)
    data: bytes | BinaryIO = spool if spool is not None else b"".join(chunks)
    return Upload(data, unquote(raw) if raw else None, "body", digest)


def _content_digest(value: str | None) -> str | None:
    """The hex sha-256 from an RFC 9530 ``Content-Digest`` header (other algorithms ignored)."""
    if not value:
        return None
    for member in value.split(","):
        algorithm, _, encoded = member.strip().partition("=")
        if algorithm.strip().lower() != "sha-256":
            continue
        try:
            raw = base64.b64decode(encoded.strip().strip(":"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise UploadRefused("Content-Digest", "bad_digest",
                                "Content-Digest 须为 sha-256=:<32 字节摘要的 base64>:")
        return raw.hex()
    return None


_BINARY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    **{t: _BINARY for t in ("image/jpeg", "image/png", "image/tiff", "application/pdf")},
}}}


@router.post(PAGES, status_code=201, summary="上传扫描页 (multipart 字段 file, 或原始请求体)",
             openapi_extra=UPLOAD_BODY, response_model=Page, responses=problems(409, 413, 503))
async def upload_page(number: str, material_id: str, request: Request, session: SessionDep,
                      actor: ActorDep, store: StoreDep, response: Response,
                      expected: OptionalVersionDep) -> Any:
    """Multipart form (field ``file``) or a raw body with its ``Content-Type`` (name in the
    ``X-File-Name`` header or ``?name=``, percent-encoded). ``If-Match`` is optional: pages are
    appended, so uploads from a document camera do not have to chase the case's ETag."""
    # Authenticated: refuse what can be refused before the body is accepted, and hold no
    # transaction (no SQLite writer, no row lock) while the body streams in.
    target = await run_in_threadpool(_target, session, number, material_id, actor, expected)
    upload = await _read_upload(request)
    try:
        page = await run_in_threadpool(
            functools.partial(scans.add_page, session, number, material_id, upload.data, upload.name,
                              actor, store=store, expected_version=expected, field=upload.field,
                              sha256=upload.sha256, target=target))
    finally:
        upload.close()
    response.headers["ETag"] = f'"{page["case_version"]}"'
    response.headers["Location"] = page_view(number, page)["content_url"].removesuffix("/content")
    return jsonable_encoder(page_view(number, page))


def _target(session: Session, number: str, material_id: str, actor: Any, expected: int | None) -> str:
    try:
        return scans.upload_target(session, number, material_id, actor, expected)
    finally:
        session.rollback()


@router.get(PAGES, summary="列出材料的扫描页", response_model=PageList)
def list_pages(number: str, material_id: str, session: SessionDep, actor: ActorDep,
               include_withdrawn: bool = False) -> Any:
    pages = scans.list_pages(session, number, actor, material_id, include_withdrawn)
    return {"items": [page_view(number, p) for p in pages], "next_cursor": None}


@router.get("/{number}/pages", summary="列出办件全部扫描页", response_model=PageList)
def list_case_pages(number: str, session: SessionDep, actor: ActorDep,
                    include_withdrawn: bool = False) -> Any:
    pages = scans.list_pages(session, number, actor, None, include_withdrawn)
    return {"items": [page_view(number, p) for p in pages], "next_cursor": None}


class PageOrder(BaseModel):
    page_ids: list[int] = Field(description="该材料全部现有页面的 id, 按新顺序")


@router.put(PAGES + "/order", summary="调整页面顺序", response_model=PageList, responses=problems(409))
def reorder_pages(number: str, material_id: str, body: PageOrder, session: SessionDep, actor: ActorDep,
            response: Response, version: VersionDep) -> Any:
    """调整页面顺序"""
    pages = scans.reorder_pages(session, number, material_id, body.page_ids, actor, version)
    response.headers["ETag"] = f'"{version + 1}"'
    return {"items": [page_view(number, p) for p in pages], "next_cursor": None}


@router.get(PAGES + "/{page_id:int}", summary="查看扫描页", response_model=Page)
def get_page(number: str, material_id: str, page_id: int, session: SessionDep, actor: ActorDep) -> Any:
    """查看扫描页 (含已撤回的页): 上传的 Location 即指向此处."""
    pages = scans.list_pages(session, number, actor, material_id, True)
    page = next((p for p in pages if p["id"] == page_id), None)
    if page is None:
        raise NotFound(f"材料 {material_id} 没有扫描页 {page_id}")
    return jsonable_encoder(page_view(number, page))


@router.delete(PAGES + "/{page_id:int}", summary="撤回扫描页 (留痕; 对象待清理)", response_model=Page,
               responses=problems(409))
def withdraw_page(number: str, material_id: str, page_id: int, session: SessionDep, actor: ActorDep,
             response: Response, version: OptionalVersionDep,
             comment: Annotated[str | None, Query(max_length=500)] = None) -> Any:
    page = scans.withdraw_page(session, number, material_id, page_id, actor,
                               version, comment)
    response.headers["ETag"] = f'"{page["case_version"]}"'
    return jsonable_encoder(page_view(number, page))


# The bytes as stored (their own media type), or on S3 a redirect to a presigned address.
_REDIRECT = {307: {"description": "对象存储的临时下载地址 (S3)", "model": Presigned,
                   "headers": {"Location": {"schema": {"type": "string"}}}}}
DOWNLOAD = {**binary("image/jpeg", "image/png", "image/tiff", "application/pdf", "video/webm",
                     "video/mp4", "application/octet-stream"), **_REDIRECT, **problems(503)}
THUMBNAIL = {**binary("image/jpeg", description="缩略图 (JPEG)"), **_REDIRECT, **problems(503)}


def _download(d: scans.Download) -> Response:
    if d.url is not None:  # S3: a short-lived presigned URL, the bytes never pass through us
        return JSONResponse({"url": d.url, "expires_in": d.expires_in, "sha256": d.sha256,
                             "media_type": d.media_type}, status_code=307,
                            headers={"Location": d.url, "Cache-Control": "no-store"})
    assert d.stream is not None
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(d.filename)}",
               "ETag": f'"{d.sha256}"', "Cache-Control": "private, no-store",
               "X-Content-Type-Options": "nosniff"}
    if d.size:
        headers["Content-Length"] = str(d.size)
    return StreamingResponse(d.stream, media_type=d.media_type, headers=headers)


@router.get(PAGES + "/{page_id:int}/content", summary="下载扫描页 (记入办件历史)",
            response_class=Response, responses=DOWNLOAD)
def download_page(number: str, material_id: str, page_id: int, session: SessionDep,
                  actor: ActorDep, store: StoreDep) -> Response:
    return _download(scans.page_download(session, number, material_id, page_id, actor, store=store))


@router.get(PAGES + "/{page_id:int}/thumbnail", summary="扫描页缩略图", response_class=Response,
            responses=THUMBNAIL)
def page_thumbnail(number: str, material_id: str, page_id: int, session: SessionDep,
                   actor: ActorDep, store: StoreDep) -> Response:
    return _download(scans.page_download(session, number, material_id, page_id, actor,
                                         store=store, thumbnail=True))


@router.get("/{number}/evidence", summary="列出办件证据 (证照、录像)", response_model=EvidenceList)
def list_evidence(number: str, session: SessionDep, actor: ActorDep) -> Any:
    return {"items": [_evidence_view(number, e) for e in scans.list_evidence(session, number, actor)],
            "next_cursor": None}


@router.get("/{number}/evidence/{evidence_id:int}/content", summary="下载证据 (记入办件历史)",
            response_class=Response, responses=DOWNLOAD)
def download_evidence(number: str, evidence_id: int, session: SessionDep, actor: ActorDep,
                      store: StoreDep) -> Response:
    return _download(scans.evidence_download(session, number, evidence_id, actor, store=store))
