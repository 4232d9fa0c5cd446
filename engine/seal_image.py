"""The seal image (印章印模): a red round seal drawn by the product onto a reportlab canvas.

The shape follows the usual one of an authority's official seal (公章): a round ring, the unit's
name along the upper arc reading clockwise with each character upright towards the rim, a
five-pointed star in the centre and, optionally, a short line below the star (such as
``行政审批专用章``). It is vector drawing, so a printed notice shows it sharp at any size.

The image is only what a reader sees; what proves the document is the PAdES signature made with
the unit's key (``engine.seals``).
"""

from __future__ import annotations

import io
import math
import subprocess
import tempfile
from pathlib import Path

from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas as rl_canvas

from engine.fonts import cjk_font

SEAL_RED = (0.86, 0.08, 0.10)
# Proportions of a 42 mm seal: a 1.2 mm ring, the star a third of the width, the name's arc
# spanning up to 250° of the circle.
RING = 1.2 / 42
STAR = 7.0 / 42
MAX_ARC_DEGREES = 250.0


def draw_seal(c: rl_canvas.Canvas, cx: float, cy: float, diameter: float, unit_name: str,
              bottom_text: str = "", *, opacity: float = 0.88) -> None:
    """Draw the seal centred at (cx, cy) with ``diameter`` in points; the canvas state is kept."""
    font = cjk_font()
    r = diameter / 2
    c.saveState()
    c.setFillColorRGB(*SEAL_RED)
    c.setStrokeColorRGB(*SEAL_RED)
    # Ink on paper: the seal lets the text below show through, as a stamp does.
    c.setFillAlpha(opacity)
    c.setStrokeAlpha(opacity)
    c.setLineWidth(diameter * RING)
    c.circle(cx, cy, r - diameter * RING / 2, stroke=1, fill=0)
    _star(c, cx, cy, diameter * STAR)
    _arc_text(c, cx, cy, r, unit_name, font)
    if bottom_text:
        size = diameter * 0.085
        while size > 4 and pdfmetrics.stringWidth(bottom_text, font, size) > diameter * 0.62:
            size -= 0.5
        c.setFont(font, size)
        c.drawCentredString(cx, cy - diameter * 0.29, bottom_text)
    c.restoreState()


def _star(c: rl_canvas.Canvas, cx: float, cy: float, outer: float) -> None:
    inner = outer * math.sin(math.radians(18)) / math.sin(math.radians(126))
    path = c.beginPath()
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = math.radians(90 + i * 36)
        x, y = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
        if i == 0:
            path.moveTo(x, y)
        else:
            path.lineTo(x, y)
    path.close()
    c.drawPath(path, stroke=0, fill=1)


def _arc_text(c: rl_canvas.Canvas, cx: float, cy: float, r: float, text: str, font: str) -> None:
    """Each character on the upper arc, upright towards the rim, spaced evenly."""
    chars = [ch for ch in text if not ch.isspace()]
    if not chars:
        return
    n = len(chars)
    # The characters stand tall and narrow (condensed to 70 %), as engraved on seals; a long name
    # spreads over the whole arc with smaller characters, a short one keeps a natural spacing.
    step = min(MAX_ARC_DEGREES / n, 33.0)
    span = step * (n - 1)
    size = min(r * 0.32, r * 0.70 * math.radians(step) * 1.25)
    baseline = r - r * 2 * RING - size * 1.02  # the characters' feet, towards the centre
    c.setFont(font, size)
    c.setLineWidth(size * 0.035)
    for i, ch in enumerate(chars):
        angle = 90 + span / 2 - i * step  # clockwise from the left end of the arc
        c.saveState()
        c.translate(cx + baseline * math.cos(math.radians(angle)), cy + baseline * math.sin(math.radians(angle)))
        c.rotate(angle - 90)
        text_obj = c.beginText()
        text_obj.setFont(font, size)
        text_obj.setHorizScale(70)
        text_obj.setTextRenderMode(2)  # filled and outlined: the stroke of an engraved character
        text_obj.setTextOrigin(-pdfmetrics.stringWidth(ch, font, size) * 0.35, 0)
        text_obj.textOut(ch)
        c.drawText(text_obj)
        c.restoreState()


def seal_pdf(unit_name: str, bottom_text: str = "", diameter_mm: float = 42) -> bytes:
    """A page just large enough for the seal (for previews and the README)."""
    side = (diameter_mm + 4) * mm
    buf = io.BytesIO()
    c = rl_canvas.Canvas(buf, pagesize=(side, side), invariant=1)
    c.setTitle(unit_name)
    draw_seal(c, side / 2, side / 2, diameter_mm * mm, unit_name, bottom_text)
    c.showPage()
    c.save()
    return buf.getvalue()


def seal_png(unit_name: str, bottom_text: str = "", dpi: int = 200) -> bytes:
    """The seal as a PNG image, rasterised from its PDF by poppler's ``pdftoppm``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "seal.pdf"
        src.write_bytes(seal_pdf(unit_name, bottom_text))
        subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-singlefile", str(src), str(Path(tmp) / "seal")],
                       check=True, capture_output=True, timeout=30)
        return (Path(tmp) / "seal.png").read_bytes()
