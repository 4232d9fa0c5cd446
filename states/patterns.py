"""Text patterns of 网络自动审批 rules (``op: matches``), compiled by a linear-time engine.

RE2 matches in time linear in the input, whatever the pattern: ``(a|a)+$`` cannot take 2^n steps
the way a backtracking engine does. What it cannot promise that for (backreferences, lookaround)
it does not compile; such a pattern is refused when the item is checked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN = 1000  # characters; RE2 also caps the compiled program (max_mem)


class PatternError(ValueError):
    """Why a pattern is refused (zh-CN)."""


def _options() -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False  # refusals are reported as problems, not printed to stderr
    opts.never_capture = True  # rules ask yes or no: groups are never extracted
    return opts


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (its ``fullmatch`` decides a rule), or PatternError."""
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"正则表达式过长: 超过 {MAX_PATTERN} 个字符")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        why = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PatternError(f"正则表达式无法用线性时间引擎 (RE2) 编译: {why}; "
                           "不支持反向引用 (\\1)、环视 ((?=…)、(?!…)、(?<=…)) 等回溯特性") from None


def fullmatch(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).fullmatch(text) is not None
