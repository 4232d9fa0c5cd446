"""The rules for a file name a person sent us (scans, files sent in a video room).

A name is kept for display only, never used as a path. What is shown must be what it looks like:
``invoice\\u202Egpj.exe`` (a right-to-left override) displays as ``invoiceexe.jpg``, and
zero-width characters make two names that look the same differ. So a name is NFC-normalised
(a decomposed é and a composed one are the same name, stored composed) and refused when it holds
an invisible or structural character (Unicode categories Cc, Cf, Cs, Zl, Zp), a path, or is
longer than ``MAX_CHARS`` characters or ``MAX_BYTES`` bytes of UTF-8. Refused, not cleaned: a
name that was changed behind the sender's back would be as misleading as the original.

``engine.scan_validation.check_name`` turns a refusal into the upload's 422, naming the field.
"""

from __future__ import annotations

import unicodedata

MAX_CHARS = 120
MAX_BYTES = 255  # what file systems and the column take
# Control, format (bidi embeddings, overrides and isolates, zero-width space/joiners, BOM, soft
# hyphen…), lone surrogates, line and paragraph separators.
REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


class BadFileName(ValueError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def clean_file_name(name: str | None) -> str | None:
    """The name as it will be stored (NFC), ``None`` when none was given; raises
    ``BadFileName`` with a code and a zh-CN reason."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", name)
    for ch in name:
        category = unicodedata.category(ch)
        if category in REFUSED_CATEGORIES:
            kind = "格式控制字符 (双向文字控制或零宽字符)" if category == "Cf" else "控制字符或不可见的分隔符"
            raise BadFileName("invisible_character",
                              f"文件名含有{kind} U+{ord(ch):04X}, 显示出的名称会与实际不符, "
                              "请重命名后再上传")
    if len(name) > MAX_CHARS:
        raise BadFileName("name_too_long", f"文件名超过 {MAX_CHARS} 个字符 (现为 {len(name)} 个)")
    if len(name.encode("utf-8")) > MAX_BYTES:
        raise BadFileName("name_too_long", f"文件名超过 {MAX_BYTES} 字节 (UTF-8 编码后为 "
                                           f"{len(name.encode('utf-8'))} 字节), 请缩短")
    if "/" in name or "\\" in name or ":" in name or name in (".", ".."):
        raise BadFileName("path_name",
                          "文件名不能包含路径或控制字符 (/ \\ : ..): 文件名只用于显示, 从不作为存储路径")
    return name
