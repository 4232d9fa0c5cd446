"""Validation of an uploaded scan before anything is stored.

The type comes from the bytes (magic numbers), never from the name or the declared content
type: JPEG, PNG, TIFF and PDF only. Images must decode completely (Pillow ``verify`` and a
``load``), PDFs must parse (pypdf). A file name is kept for display only and never used as a
path; a path-like name is refused so that nobody relies on it. Each refusal names the field,
a machine code and its own zh-CN reason.

Decoding is bounded by memory, not only by a pixel count: the header gives the size and mode,
hence what the decode will allocate (pixels × bytes per pixel, at the reduced scale a JPEG is
decoded at), and a file that needs more than ``decode_memory_bytes`` is refused before a pixel
is decoded. Every check — image or PDF, whatever the file's size — runs in the decode pool
(``engine.offload.DECODES``: a few worker processes, each check with a deadline and an address-
space ceiling), and makes the page's thumbnail from the pixels it decoded: no second decode.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from core.settings import get_settings
from engine import offload
from engine.errors import EngineError, Unavailable
from engine.filenames import BadFileName, clean_file_name

SUPPORTED = {"image/jpeg": ".jpg", "image/png": ".png", "image/tiff": ".tif", "application/pdf": ".pdf"}
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/tiff": "TIFF"}
NAME_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".pdf": "PDF"}
MAX_PIXELS = 120_000_000  # an A3 page at 600 dpi is about 70 Mpx
MAX_NAME = 255
MB = 1024 * 1024

logging.getLogger("pypdf").setLevel(logging.ERROR)  # broken PDFs are refused, not logged at length


class UploadRefused(EngineError):
    """A refused upload: 422 problem details with ``errors: [{field, code, reason}]``."""

    status, type, title = 422, "/problems/upload-refused", "上传被拒绝"
    help = ("上传的文件不能作为扫描件接收: 不是声明的格式、无法解码、页数或像素超过上限,"
            " 或文件名不可用。errors 给出字段与原因; 请扫描为 JPEG、PNG、TIFF 或 PDF 后重新上传。")

    def __init__(self, field: str, code: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", code=code,
                         errors=[{"field": field, "code": code, "reason": reason}])
        self.field, self.code, self.reason = field, code, reason

    def __reduce__(self) -> tuple[type[UploadRefused], tuple[str, str, str]]:
        return type(self), (self.field, self.code, self.reason)  # raised in a decode worker


class UploadTooLarge(UploadRefused):
    status, type, title = 413, "/problems/too-large", "文件过大"
    help = "请求体或上传的文件超过允许的大小, 在读完之前即已拒绝, 什么都没有写入。detail 给出上限; 请压缩或分页上传。"


@dataclass(frozen=True)
class Checked:
    media_type: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    # A decoded page (callers may hand one to ``thumbnails``); the check itself gives ``thumbnail``.
    preview: Image.Image | None = field(default=None, compare=False, repr=False)
    # Images: the page's thumbnail (JPEG), made from the pixels the check decoded.
    thumbnail: bytes | None = field(default=None, compare=False, repr=False)

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
    """Check size, type and integrity; leaves ``stream`` at its start. Raises UploadRefused, or
    Unavailable when every decode worker stayed busy."""
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
        return inspect_bounded(stream, media_type, field)
    finally:
        stream.seek(start)


def inspect_bounded(data: bytes | BinaryIO, media_type: str, field: str = "file") -> Checked:
    """``inspect`` in the decode pool, with the configured memory and time budgets."""
    s = get_settings()
    try:
        return offload.DECODES.run(inspect, media_type, field, s.decode_memory_bytes, s.thumbnail_px,
                                   data=data, timeout=s.decode_seconds)
    except offload.Overrun:
        raise UploadRefused(field, "too_slow",
                            f"文件检查超过时限 {s.decode_seconds:g} 秒 (结构过于复杂), 未保存") from None
    except offload.WorkerLost:
        raise UploadRefused(field, "too_much_memory",
                            f"文件解码超出内存上限 ({s.decode_memory_bytes // MB} MB), 未保存") from None
    except offload.Busy as exc:
        raise Unavailable(exc.reason, retry_after=s.store_retry_after) from None


def inspect(stream: BinaryIO, media_type: str, field: str, memory: int, px: int) -> Checked:
    """The check itself (in a decode worker): an image within ``memory`` bytes of pixels, with its
    ``px`` thumbnail; a PDF whose every page resolves."""
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: the budget above decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if media_type == "application/pdf":
                return _check_pdf(stream, field)
            return _check_image(stream, media_type, field, memory, px)
    except MemoryError:  # beyond the estimate: the worker's address-space ceiling
        raise UploadRefused(field, "too_much_memory",
                            f"文件解码超出内存上限 ({memory // MB} MB), 未保存") from None


def _pixel_bytes(mode: str) -> int:
    """Bytes per pixel as Pillow stores the mode (2–4 bands take 4 bytes, as does "I"/"F")."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def decode_bytes(im: Image.Image, width: int, height: int) -> int:
    """What decoding ``im`` (opened, drafted, not loaded) will allocate, from its header."""
    need = im.size[0] * im.size[1] * _pixel_bytes(im.mode)
    if im.format == "JPEG" and (im.info.get("progressive") or im.info.get("progression")):
        # A progressive JPEG keeps every DCT coefficient (2 bytes per sample) until the last scan,
        # at full size whatever the output scale.
        layers = getattr(im, "layer", None) or [("", 1, 1, 0)] * len(im.getbands())
        hmax = max(h for _, h, _, _ in layers) or 1
        vmax = max(v for _, _, v, _ in layers) or 1
        need += sum(2 * math.ceil(width * h / hmax) * math.ceil(height * v / vmax) for _, h, v, _ in layers)
    elif im.format == "TIFF":
        need += _tiff_block_bytes(im, width, height)
    return need


def _tiff_block_bytes(im: Image.Image, width: int, height: int) -> int:
    """libtiff decodes a strip or a tile at a time into a buffer of its own: as big as the whole
    image when the file is one strip (no RowsPerStrip)."""
    tags = getattr(im, "tag_v2", {})
    bits = tags.get(258, 8)  # BitsPerSample, one per sample or one for all
    per_pixel = sum(bits) if isinstance(bits, tuple) else int(bits) * int(tags.get(277, len(im.getbands())))
    tile_w, tile_h = tags.get(322), tags.get(323)  # TileWidth, TileLength
    if tile_w and tile_h:
        return math.ceil(int(tile_w) * per_pixel / 8) * int(tile_h)
    rows = min(int(tags.get(278, height)), height)  # RowsPerStrip
    return math.ceil(width * per_pixel / 8) * rows


def _check_image(stream: BinaryIO, media_type: str, field: str, memory: int, px: int) -> Checked:
    fmt = PIL_FORMATS[media_type]
    start = stream.tell()
    try:
        with Image.open(stream, formats=[fmt]) as im:  # reads the header only
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise UploadRefused(field, "too_many_pixels", f"图像像素过多 ({width}×{height})")
            if fmt == "JPEG":
                # Decode at the smallest scale (1/2…1/8) still as large as the thumbnail: all
                # the entropy-coded data is still read (a truncated or corrupt file still fails),
                # at a fraction of the CPU and memory.
                im.draft(im.mode, (px, px))
            need = decode_bytes(im, width, height)
            if need > memory:
                raise UploadRefused(
                    field, "too_much_memory",
                    f"图像解码约需 {math.ceil(need / MB)} MB 内存, 超过每次解码的上限 {memory // MB} MB "
                    f"({width}×{height}, {im.mode}); 请降低分辨率或改用 JPEG 后重新上传")
            im.verify()  # structure and checksums (PNG CRCs)
        stream.seek(start)
        with Image.open(stream, formats=[fmt]) as im:
            if fmt == "JPEG":
                im.draft(im.mode, (px, px))
            im.load()
            thumb = _thumbnail(im, px)
    except UploadRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            EOFError) as exc:
        raise UploadRefused(field, "corrupt_image", f"{fmt} 图像无法完整解码: {exc}") from None
    return Checked(media_type, width=width, height=height, thumbnail=thumb)


def _thumbnail(im: Image.Image, px: int) -> bytes | None:
    """A small JPEG of a loaded page; None when its mode cannot be drawn (the page still counts)."""
    try:
        im.thumbnail((px, px))  # in place, reducing first: no second full-size copy
        small = ImageOps.exif_transpose(im)
        if small.mode not in ("RGB", "L"):
            small = small.convert("RGB")
        out = io.BytesIO()
        small.save(out, "JPEG", quality=80)
        return out.getvalue()
    except (OSError, ValueError):
        return None


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
