"""PDF output with a CJK font: certificates and written notices from their Jinja2 layouts, and waybills.

Notices (文书) are laid out by ``catalog/documents/<kind>_<code>.xml.j2`` for one item, falling back
to ``<kind>.xml.j2``, and drawn by ``engine.pdf_notice`` (paragraphs, tables, the signature block
with the unit's seal).

Templates (``catalog/certificates/certificate_<code>.xml.j2``, falling back to ``certificate.xml.j2``)
render a small XML layout — title, lines, labelled fields, a note — that is drawn here with
reportlab. reportlab embeds TrueType outlines; WenQuanYi Zen Hei is TrueType (the Noto CJK
fonts are CFF and cannot be embedded by it).

Drawing is pure Python (reportlab) over text that applicants wrote: it runs in a worker process
(``engine.offload.COMPUTE``) within ``render_seconds``, never holding the server's interpreter.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

import jinja2
import qrcode
from reportlab.lib.pagesizes import A4, A6
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas

from core.settings import ROOT, get_settings
from engine import offload
from engine.fonts import cjk_font
from engine.pdf_notice import draw_notice
from engine.seal_image import draw_seal

# Certificate layouts belong to the catalog, beside the items they are issued for.
TEMPLATES = ROOT / "catalog" / "certificates"
NOTICE_TEMPLATES = ROOT / "catalog" / "documents"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_notice_env = jinja2.Environment(loader=jinja2.FileSystemLoader(NOTICE_TEMPLATES), autoescape=True,
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def certificate_layout(item_code: str, context: dict[str, Any]) -> ET.Element:
    try:
        template = _env.get_template(f"certificate_{item_code}.xml.j2")
    except jinja2.TemplateNotFound:
        template = _env.get_template("certificate.xml.j2")
    return ET.fromstring(template.render(**context))


def notice_template(kind: str, item_code: str) -> str:
    """The template's file name for this kind and item: the item's own, else the default."""
    own = f"{kind}_{item_code}.xml.j2"
    return own if (NOTICE_TEMPLATES / own).exists() else f"{kind}.xml.j2"


def notice_layout(kind: str, item_code: str, facts: dict[str, Any]) -> ET.Element:
    return ET.fromstring(_notice_env.get_template(notice_template(kind, item_code)).render(**facts))


def notice_pdf(layout: ET.Element, meta_title: str, footer: str) -> bytes:
    """The notice drawn in a worker process (raises ``offload.Overrun`` past the budget)."""
    return offload.COMPUTE.run(draw_notice, layout, meta_title, footer, timeout=get_settings().render_seconds)


def _qr(url: str) -> ImageReader:
    img = qrcode.make(url, border=1)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    return ImageReader(buf)


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    lines, line = [], ""
    for ch in text:
        if pdfmetrics.stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ""
        line += ch
    return [*lines, line] if line else lines


def certificate_pdf(layout: ET.Element, verify_url: str, meta_title: str) -> bytes:
    """The certificate drawn in a worker process (raises ``offload.Overrun`` past the budget)."""
    return offload.COMPUTE.run(_draw_certificate, layout, verify_url, meta_title,
                               timeout=get_settings().render_seconds)


def waybill_pdf(fields: list[tuple[str, str]], number: str, carrier: str) -> bytes:
    """A printable waybill label (A6) with the tracking number as a QR code, drawn in a worker."""
    return offload.COMPUTE.run(_draw_waybill, fields, number, carrier, timeout=get_settings().render_seconds)


def _draw_certificate(layout: ET.Element, verify_url: str, meta_title: str) -> bytes:
    font = cjk_font()
    buf = io.BytesIO()
    w, h = A4
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)  # invariant: same input, same bytes
    c.setTitle(meta_title)
    c.setStrokeColorRGB(0.7, 0.1, 0.1)
    c.setLineWidth(3)
    c.rect(15 * mm, 15 * mm, w - 30 * mm, h - 30 * mm)
    y = h - 45 * mm
    for el in layout:
        text = (el.text or "").strip()
        if el.tag == "title":
            c.setFont(font, 30)
            c.drawCentredString(w / 2, y, text)
            y -= 18 * mm
        elif el.tag == "line":
            c.setFont(font, 13)
            c.drawCentredString(w / 2, y, text)
            y -= 14 * mm
        elif el.tag == "field":
            c.setFont(font, 14)
            label = f"{el.get('label')}："
            c.drawString(32 * mm, y, label)
            # A long label (统一社会信用代码) pushes its value right rather than under it.
            x = max(62 * mm, 32 * mm + pdfmetrics.stringWidth(label, font, 14) + 1 * mm)
            for part in _wrap(text, font, 14, w - 33 * mm - x):
                c.drawString(x, y, part)
                y -= 9 * mm
            y -= 2 * mm
        elif el.tag == "seal" and el.get("unit"):
            # The issuing unit's seal stamped over the lines just drawn (发证机关, 日期), as ink is.
            draw_seal(c, w - 72 * mm, y + 12 * mm, 40 * mm, el.get("unit") or "", el.get("text") or "")
        elif el.tag == "note":
            c.setFont(font, 10)
            note_y = 45 * mm
            for part in _wrap(text, font, 10, w - 100 * mm):
                c.drawString(25 * mm, note_y, part)
                note_y -= 5 * mm
    c.drawImage(_qr(verify_url), w - 62 * mm, 22 * mm, 38 * mm, 38 * mm)
    c.showPage()
    c.save()
    return buf.getvalue()


def _draw_waybill(fields: list[tuple[str, str]], number: str, carrier: str) -> bytes:
    font = cjk_font()
    buf = io.BytesIO()
    w, h = A6
    c = canvas.Canvas(buf, pagesize=A6, invariant=1)
    c.setTitle(f"运单 {number}")
    c.setFont(font, 14)
    c.drawString(8 * mm, h - 14 * mm, f"{carrier} 邮寄运单")
    c.setFont(font, 11)
    c.drawString(8 * mm, h - 22 * mm, f"运单号：{number}")
    y = h - 32 * mm
    for label, value in fields:
        c.setFont(font, 9)
        for i, part in enumerate(_wrap(f"{label}：{value}", font, 9, w - 16 * mm)):
            c.drawString(8 * mm + (12 * mm if i else 0), y, part)
            y -= 5 * mm
        y -= 1 * mm
    c.drawImage(_qr(number), w - 36 * mm, 6 * mm, 28 * mm, 28 * mm)
    c.showPage()
    c.save()
    return buf.getvalue()
