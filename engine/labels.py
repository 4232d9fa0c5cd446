"""What people read instead of internal names: field labels and validation errors in zh-CN.

``validation_sentences`` turns pydantic's error list (``ValidationError.errors()``) into one
Chinese sentence per error, naming the field by its label and saying what is wrong in words,
by the error's ``type`` and its ``ctx`` (lengths, bounds), never quoting a regular expression
or pydantic's English message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FIELD_LABELS = {
    "name": "名称/姓名", "kind": "申请人类型", "id_number": "证件号码", "id_type": "证件类型",
    "phone": "联系电话", "address": "地址", "competent_region": "办理地", "item_code": "事项",
    "materials": "材料", "comment": "意见", "reason": "理由", "promise": "承诺补齐日期",
    "signer": "承诺人", "text": "承诺内容", "mode": "办理方式", "agent": "代理人", "applicant": "申请人",
    "defer": "容缺材料", "promise_date": "承诺补齐日期", "commitment": "告知承诺", "target": "退回环节",
    "clerk_id": "工作人员", "counter_id": "窗口", "situation": "申请人情形", "q": "检索词", "state": "状态",
    "item": "事项", "deadline": "期限", "claim": "认领", "sort": "排序", "order": "页面顺序",
    "tab": "页签", "offset": "翻页位置", "desc": "排序方向", "version": "版本", "status": "状态", "file": "文件",
    "form_token": "表单", "csrf": "表单", "agent_name": "代理人姓名", "agent_id_number": "代理人证件号码",
    "agent_id_type": "代理人证件类型", "agent_phone": "代理人电话", "signer_name": "承诺人",
}

# What each kind of field expects when its format (pattern) is not met.
FORMAT_HINTS = {
    "id_number": "须为 6 至 32 位数字或字母",
    "phone": "须为 5 至 20 位数字, 可含「-」, 可以「+」开头",
}


def field_label(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    labels = [FIELD_LABELS.get(p, "") for p in parts]
    named = [lb for lb in labels if lb]
    if not named:
        return "所填内容"
    if "agent" in parts[:-1] and named[-1] != FIELD_LABELS["agent"]:
        return FIELD_LABELS["agent"] + named[-1]  # 代理人证件号码, not the applicant's
    return named[-1]


def engine_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The engine's ``{field, reason}`` list (fields as dotted paths) with each field named by its label."""
    return [{"field": field_label(re.sub(r"\[\d+\]", "", str(e["field"])).split(".")) if e.get("field") else "",
             "reason": str(e.get("reason", ""))} for e in errors]


def _reason(err: Mapping[str, Any], last: str) -> str:
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "为必填项"
    if kind == "string_pattern_mismatch":
        return FORMAT_HINTS.get(last, "格式不正确")
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length") in (1, None) else f"至少 {ctx['min_length']} 个字符"
    if kind == "string_too_long":
        return f"最多 {ctx.get('max_length')} 个字符"
    if kind in ("literal_error", "enum"):
        return "不是可选的值"
    if kind in ("int_parsing", "int_type", "float_parsing"):
        return "须为数字"
    if kind in ("date_parsing", "date_from_datetime_parsing", "datetime_parsing", "date_type"):
        return "须为日期 (年-月-日)"
    if kind in ("greater_than", "greater_than_equal"):
        return f"不能小于 {ctx.get('gt', ctx.get('ge'))}"
    if kind in ("less_than", "less_than_equal"):
        return f"不能大于 {ctx.get('lt', ctx.get('le'))}"
    if kind == "extra_forbidden":
        return "不是本表单的项目"
    if kind in ("string_type", "dict_type", "list_type", "model_type"):
        return "内容的类型不正确"
    return "填写不正确"


def validation_sentences(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One ``{"field": label, "reason": sentence}`` per error, with duplicates merged."""
    out: list[dict[str, str]] = []
    for err in errors:
        loc = [p for p in err.get("loc", ()) if not isinstance(p, int)]
        last = str(loc[-1]) if loc else ""
        row = {"field": field_label(loc), "reason": _reason(err, last)}
        if row not in out:
            out.append(row)
    return out


# What each kind of history event is called on the case page (engine.views.history_lines).
EVENT_LABELS = {
    "intake": "收件", "transition": "办理", "material": "材料清单", "assign": "转交", "claim": "认领",
    "release": "释放认领", "extension": "延期", "handoff": "跨域移交 (接件)", "page_added": "上传扫描件",
    "page_withdrawn": "撤回扫描件", "pages_reordered": "调整扫描件顺序", "page_downloaded": "查看扫描件",
    "evidence_stored": "存证", "evidence_downloaded": "查看存证文件", "certificate_revoked": "证照注销",
    "video_open": "发起视频环节", "video_join": "进入视频环节", "video_leave": "离开视频环节",
    "video_close": "视频环节结束", "video_chat": "视频环节留言", "video_recording": "视频环节录像已存证",
    "video_capture": "高拍仪截图", "video_file": "视频环节传送文件",
}
MATERIAL_STATUS = {"received": "已收", "missing": "缺", "deferred": "容缺"}
EVIDENCE_KINDS = {"certificate": "证照", "recording": "录像", "waybill": "运单面单", "notice": "文书"}


def event_label(kind: str) -> str:
    return EVENT_LABELS.get(kind, "其他事件")


def engine_message(detail: str, errors: Iterable[Mapping[str, Any]] | None) -> str:
    """An engine refusal as one sentence for a page: each field by its label, not its path."""
    if not errors:
        return detail
    return "; ".join(f"{e['field']}: {e['reason']}" if e["field"] else e["reason"] for e in engine_errors(errors))


# pydantic's English sentences as the item checker passes them on (``states.loader`` keeps the
# message, not the error's type), in words, without the regular expression.
_PYDANTIC = [
    (re.compile(r"String should match pattern '.*'"), "格式不正确"),
    (re.compile(r"String should have at least (\d+) characters?"), r"至少 \1 个字符"),
    (re.compile(r"String should have at most (\d+) characters?"), r"最多 \1 个字符"),
    (re.compile(r"List should have at least (\d+) items?.*"), r"至少 \1 项"),
    (re.compile(r"List should have at most (\d+) items?.*"), r"最多 \1 项"),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"不能小于 \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"须大于 \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"不能大于 \1"),
    (re.compile(r"Input should be less than (\S+)"), r"须小于 \1"),
    (re.compile(r"Input should be a valid integer.*"), "须为整数"),
    (re.compile(r"Input should be a valid number.*"), "须为数字"),
    (re.compile(r"Input should be a valid boolean.*"), "须为 true 或 false"),
    (re.compile(r"Input should be a valid string"), "须为文本"),
    (re.compile(r"Input should be a valid list"), "须为列表"),
    (re.compile(r"Input should be a valid dictionary.*"), "须为映射 (键: 值)"),
    (re.compile(r"Input should be a valid date.*"), "须为日期 (年-月-日)"),
    (re.compile(r"Input should be (.+)"), r"须为 \1 之一"),
    (re.compile(r"Field required"), "缺少必填字段"),
    (re.compile(r"Extra inputs are not permitted"), "未知字段"),
]


def checker_message(message: str) -> str:
    """An item checker's message with pydantic's English part said in Chinese."""
    head, sep, tail = message.rpartition(": ")
    for pattern, words in _PYDANTIC:
        if pattern.fullmatch(tail):
            return f"{head}{sep}{pattern.sub(words, tail)}".replace("' or '", "'、'")
    return message
