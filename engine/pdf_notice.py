"""Drawing a written notice (文书) from its XML layout: A4, flowing over as many pages as it needs.

The layout language (rendered by Jinja2 from ``catalog/documents/<kind>.xml.j2``):

- ``<title>`` the notice's name, large and centred; ``<number>`` its 文号, centred below it;
- ``<p>`` a paragraph (``indent="0"`` for none, default two characters; ``align="right|center"``;
  ``size`` in points); ``<h>`` a short heading line;
- ``<field label="…">`` a labelled value;
- ``<table widths="1,4,1">`` with ``<tr head="1">`` / ``<tr>`` rows of ``<td>`` cells, which wrap;
- ``<signature unit="…" date="…" seal="…"/>``: the issuing unit and the date in China time, right
  aligned, with the unit's red seal over them (``engine.seal_image``); ``seal=""`` draws none;
- ``<spacer mm="6"/>`` and ``<note>`` (small print);
- ``<qr url="…" mm="24" caption="…">…</qr>``: a QR code of the address (vector, drawn by reportlab)
  in a right-hand column with its small caption under it; the elements inside flow on the left.

The footer repeats the 文号 and the page. reportlab's ``invariant`` mode keeps it byte-stable.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from engine.fonts import cjk_font
from engine.seal_image import draw_seal

SEAL_MM = 40
MARGIN = 25 * mm
ALIGN = {"right": TA_RIGHT, "center": TA_CENTER}


def _style(font: str, size: float, *, align: int = TA_JUSTIFY, indent: float = 0, leading: float = 1.6,
           space_after: float = 2) -> ParagraphStyle:
    return ParagraphStyle("n", fontName=font, fontSize=size, leading=size * leading, alignment=align,
                          firstLineIndent=indent, wordWrap="CJK", spaceAfter=space_after * mm)


def _text(el: ET.Element) -> str:
    """The element's text with line breaks kept (``<br/>`` in a paragraph), markup escaped."""
    raw = "".join(el.itertext()).strip()
    return "<br/>".join(escape(line.strip()) for line in raw.splitlines() if line.strip())


class Signature(Flowable):
    """The unit and the date, right aligned, the seal centred over the unit's name."""

    def __init__(self, font: str, unit: str, date: str, seal: str) -> None:
        super().__init__()
        self.font, self.unit, self.date, self.seal = font, unit, date, seal
        self.height = SEAL_MM * mm

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width = avail_width
        return avail_width, self.height

    def draw(self) -> None:
        c, size = self.canv, 14
        right = self.width - 4 * mm
        y_unit = self.height / 2 + 2 * mm
        c.setFont(self.font, size)
        c.drawRightString(right, y_unit, self.unit)
        c.drawRightString(right, y_unit - 9 * mm, self.date)
        if self.seal:
            cx = right - stringWidth(self.unit, self.font, size) / 2
            draw_seal(c, cx, y_unit - 2 * mm, SEAL_MM * mm, self.seal)


def _table(el: ET.Element, font: str, avail: float) -> Table:
    rows = el.findall("tr")
    widths = [float(w) for w in (el.get("widths") or "").split(",") if w.strip()]
    ncols = max((len(r.findall("td")) for r in rows), default=1)
    if len(widths) != ncols:
        widths = [1.0] * ncols
    total = sum(widths)
    col = [avail * w / total for w in widths]
    cell = _style(font, 10.5, align=TA_CENTER, leading=1.4, space_after=0)
    left = _style(font, 10.5, leading=1.4, space_after=0)
    data = [[Paragraph(_text(td), cell if (r.get("head") or td.get("align") == "center") else left)
             for td in r.findall("td")] for r in rows]
    t = Table(data, colWidths=col, repeatRows=1 if rows and rows[0].get("head") else 0)
    style = [("GRID", (0, 0), (-1, -1), 0.6, colors.black), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("TOPPADDING", (0, 0), (-1, -1), 4), ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]
    if rows and rows[0].get("head"):
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.93, 0.93, 0.93)))
    t.setStyle(TableStyle(style))
    return t


def _qr(el: ET.Element, font: str, avail: float) -> Table:
    """The QR code in a right-hand column, its caption under it; the children flow on the left."""
    url = (el.get("url") or "").strip()
    if not url:
        raise ValueError("文书版式的 <qr> 须有 url")
    side = float(el.get("mm") or 24) * mm
    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    code = Drawing(side, side, transform=[side / (x1 - x0), 0, 0, side / (y1 - y0), 0, 0])
    code.add(widget)
    right = [code]
    if caption := (el.get("caption") or "").strip():
        right.append(Paragraph(escape(caption), _style(font, 8, align=TA_CENTER, leading=1.3, space_after=0)))
    column = side + 8 * mm
    t = Table([[flowables(el, font, avail - column), right]], colWidths=[avail - column, column])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, 0), 0),
                           ("RIGHTPADDING", (1, 0), (1, 0), 0), ("TOPPADDING", (0, 0), (-1, -1), 0)]))
    return t


def flowables(layout: ET.Element, font: str, avail: float) -> list[Any]:
    out: list[Any] = []
    body = 12.5
    for el in layout:
        tag = el.tag
        if tag == "title":
            out.append(Paragraph(_text(el), _style(font, 24, align=TA_CENTER, leading=1.3, space_after=3)))
        elif tag == "number":
            out.append(Paragraph(_text(el), _style(font, 12, align=TA_CENTER, space_after=6)))
        elif tag == "h":
            out.append(Paragraph(_text(el), _style(font, 13, leading=1.6, space_after=1)))
        elif tag == "p":
            size = float(el.get("size") or body)
            indent = float(el.get("indent") or 2) * size
            out.append(Paragraph(_text(el), _style(font, size, align=ALIGN.get(el.get("align") or "", TA_JUSTIFY),
                                                   indent=indent)))
        elif tag == "field":
            out.append(Paragraph(f"{escape(el.get('label') or '')}：{_text(el)}", _style(font, body)))
        elif tag == "table":
            out += [_table(el, font, avail), Spacer(1, 3 * mm)]
        elif tag == "signature":
            out.append(KeepTogether([Spacer(1, 2 * mm), Signature(font, el.get("unit") or "", el.get("date") or "",
                                                                   el.get("seal", el.get("unit") or ""))]))
        elif tag == "spacer":
            out.append(Spacer(1, float(el.get("mm") or 5) * mm))
        elif tag == "note":
            out.append(Paragraph(_text(el), _style(font, 9.5, leading=1.5)))
        elif tag == "qr":
            out.append(_qr(el, font, avail))
        else:
            raise ValueError(f"文书版式中有未知元素 <{tag}>")
    return out


def draw_notice(layout: ET.Element, meta_title: str, footer: str) -> bytes:
    """The notice as PDF bytes (run in a worker process: ``engine.pdf.notice_pdf``)."""
    font = cjk_font()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=22 * mm,
                            bottomMargin=22 * mm, title=meta_title, author=footer, invariant=1)

    def page(c: Any, d: Any) -> None:
        c.saveState()
        c.setFont(font, 8.5)
        c.setFillColorRGB(0.35, 0.35, 0.35)
        c.drawString(MARGIN, 12 * mm, footer)
        c.drawRightString(A4[0] - MARGIN, 12 * mm, f"第 {d.page} 页")
        c.restoreState()

    doc.build(flowables(layout, font, A4[0] - 2 * MARGIN), onFirstPage=page, onLaterPages=page)
    return buf.getvalue()
