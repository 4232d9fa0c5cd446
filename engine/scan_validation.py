"""Validation of an uploaded scan before anything is stored.

The type comes from the bytes (magic numbers), never from the name or the declared content
type: JPEG, PNG, TIFF and PDF only. Images must decode completely (Pillow ``verify`` and a
``load``), PDFs must parse (pypdf). A file name is kept for display only and never used as a
path; a path-like name is refused so that nobody relies on it. Each refusal names the field,
a machine code and its own zh-CN reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from engine.errors import EngineError
from engine.filenames import BadFileName, clean_file_name

SUPPORTED = {"image/jpeg": ".jpg", "image/png": ".png", "image/tiff": ".tif", "application/pdf": ".pdf"}
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF"}
NAME_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".pdf": "PDF"}
MAX_PIXELS = 120_000_000  # an A3 page at 600 dpi is about 70 Mpx
MAX_NAME = 255

logging.getLogger("pypdf").setLevel(logging.ERROR)  # broken PDFs are refused, not logged at length


class UploadRefused(EngineError):
    """A refused upload: 422 problem details with ``errors: [{field, code, reason}]``."""

    status, type, title = 422, "/problems/upload-refused", "上传被拒绝"

    def __init__(self, field: str, code: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", code=code,
                         errors=[{"field": field, "code": code, "reason": reason}])
        self.code = code


class UploadTooLarge(UploadRefused):
    status, type, title = 413, "/problems/too-large", "文件过大"


@dataclass(frozen=True)
class Checked:
    media_type: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    # JPEG: the page as decoded at 1/8 scale during the check; the thumbnail worker starts
    # from it instead of fetching and decoding the object again.
    preview: Image.Image | None = field(default=None, compare=False, repr=False)

    @property
    def extension(self) -> str:
        return SUPPORTED[self.media_type]


def sniff(head: bytes) -> str | None:
    """The media type from the first bytes, or None for anything we do not accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def check_name(name: str | None, field: str) -> str | None:
    """The display name as stored (NFC), or a refusal naming ``field`` (engine.filenames has the
    rules: no path, no invisible or format characters, a length cap). ``None`` when no name was given."""
    try:
        return clean_file_name(name)
    except BadFileName as exc:
        raise UploadRefused(field, exc.code, exc.reason) from None


def check_size(size: int, max_bytes: int, field: str) -> None:
    if size == 0:
        raise UploadRefused(field, "empty", "文件为空")
    if size > max_bytes:
        raise UploadTooLarge(field, "too_large", f"文件超过大小上限 {max_bytes} 字节")


def validate(stream: BinaryIO, size: int, *, name: str | None, max_bytes: int,
             field: str = "file") -> Checked:
    """Check size, type and integrity; leaves ``stream`` at its start. Raises UploadRefused."""
    check_name(name, field)
    check_size(size, max_bytes, field)
    start = stream.tell()
    try:
        media_type = sniff(stream.read(16))
        stream.seek(start)
        if media_type is None:
            claimed = NAME_SUFFIXES.get(PurePosixPath(name or "").suffix.lower())
            if claimed:
                raise UploadRefused(field, "type_mismatch",
                                    f"文件名表明是 {claimed}, 但内容不是 {claimed} (类型按文件内容判断)")
            raise UploadRefused(field, "unknown_type", "无法识别的文件类型: 只接受 JPEG、PNG、TIFF 或 PDF")
        if media_type == "application/pdf":
            return _check_pdf(stream, field)
        return _check_image(stream, media_type, field)
    finally:
        stream.seek(start)


def _check_image(stream: BinaryIO, media_type: str, field: str) -> Checked:
    fmt = PIL_FORMATS[media_type]
    start = stream.tell()
    try:
        with Image.open(stream, formats=[fmt]) as im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise UploadRefused(field, "too_many_pixels", f"图像像素过多 ({width}×{height})")
            im.verify()  # structure and checksums (PNG CRCs)
        stream.seek(start)
        preview = None
        with Image.open(stream, formats=[fmt]) as im:
            if fmt == "JPEG":
                # Decode every scan at 1/8 scale: all the entropy-coded data is still read (a
                # truncated or corrupt file still fails), at a fraction of the CPU.
                im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
            im.load()
            if fmt == "JPEG":
                preview = im.copy()
    except UploadRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            EOFError) as exc:
        raise UploadRefused(field, "corrupt_image", f"{fmt} 图像无法完整解码: {exc}") from None
    return Checked(media_type, width=width, height=height, preview=preview)


def _check_pdf(stream: BinaryIO, field: str) -> Checked:
    try:
        reader = PdfReader(stream, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UploadRefused(field, "encrypted_pdf", "PDF 已加密, 无法审阅")
        pages = len(reader.pages)
        for page in reader.pages:
            _ = page.mediabox  # every page object must resolve
    except UploadRefused:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise UploadRefused(field, "corrupt_pdf", f"PDF 无法解析: {exc}") from None
    if pages == 0:
        raise UploadRefused(field, "corrupt_pdf", "PDF 无法解析: 没有页面")
    return Checked("application/pdf", pages=pages)
