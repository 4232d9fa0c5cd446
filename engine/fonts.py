"""The CJK font every drawn PDF uses (notices, certificates, waybills, seals).

reportlab embeds TrueType outlines; WenQuanYi Zen Hei is TrueType (the Noto CJK fonts are CFF
and cannot be embedded by it). Without it the CID font STSong-Light is named, not embedded: the
viewer supplies the glyphs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

FONT_FILES = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
              "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


@lru_cache
def cjk_font() -> str:
    """The registered font's name (registered once per process)."""
    for path in FONT_FILES:
        if Path(path).exists():
            pdfmetrics.registerFont(TTFont("TongbanCJK", path, subfontIndex=0))
            return "TongbanCJK"
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"
