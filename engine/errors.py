"""Errors the engine raises; the API turns each into RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """A refusal. Each kind declares its problem ``type`` (a path the product answers with a page
    explaining it: ``api.problem_types``), its title and ``help``: when it happens and what to do."""

    status = 400
    type = "about:blank"
    title = "请求错误"
    help = ""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def said(self) -> str:
        """The refusal as a page tells a person: an invalid field's reasons, never its name
        (``detail`` reads ``phone: …`` for an API client)."""
        reasons = [str(e.get("reason", "")) for e in self.extra.get("errors") or [] if e.get("reason")]
        return "; ".join(reasons) or self.detail


class NotFound(EngineError):
    status, type, title = 404, "/problems/not-found", "未找到"
    help = ("所请求的办件、事项、扫描页、证照或其他对象不存在,"
            " 或对申请人而言办件编号与查询码不匹配 (两者答复相同,"
            " 以免猜测编号)。请核对地址中的编号。")


class Unauthenticated(EngineError):
    status, type, title = 401, "/problems/unauthenticated", "未认证"
    help = ("请求没有带有效的凭证: API 请求须带 Authorization: Bearer 令牌 (工作人员的 API 令牌),"
            " 页面须先登录。令牌失效或被吊销时也会如此。")


class Forbidden(EngineError):
    """Extra ``missing`` lists what the actor lacks: a role, the holding counter, assignment."""

    status, type, title = 403, "/problems/forbidden", "无权操作"
    help = ("调用者已认证, 但缺少执行此操作所需的条件。"
            "答复的 missing 字段逐项列出所缺: 角色 (role:…)、持有办件的窗口 (counter)、本步骤的认领人 (assignee) "
            "或陪办人员 (companion)。请由具备该角色、所在窗口持有办件的人员办理,"
            " 或先认领本步骤。")


class InvalidInput(EngineError):
    """Extra ``errors`` is a list of {field, reason}."""

    status, type, title = 422, "/problems/invalid-input", "输入无效"
    help = ("请求中的某些字段不符合要求。答复的 errors 列表给出每个字段 (field) 及原因 (reason);"
            " 什么都没有写入。改正这些字段后重试即可。")

    def __init__(self, field: str, reason: str, **extra: Any) -> None:
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}], **extra)


class TriggerNotOpen(EngineError):
    """The trigger does not apply to the case's state; extra ``open_triggers`` lists what does."""

    status, type, title = 409, "/problems/trigger-not-open", "当前状态不能执行此操作"
    help = ("办件当前所在的状态不能执行这个操作 (例如已办结的办件不能再审批)。"
            "答复的 open_triggers 列出此刻可以执行的操作;"
            " 请先读取办件 (GET /api/v1/cases/{number}) 查看其状态。")


class GuardFailed(EngineError):
    status, type, title = 409, "/problems/guard-failed", "前置条件未满足"
    help = ("操作的前置条件尚未满足, 例如必备材料未收齐、须填写意见、尚有容缺材料未补交。"
            "答复的 guards 列出每个未满足的条件及原因;"
            " 满足后重试。")


class StaleVersion(EngineError):
    status, type, title = 412, "/problems/stale-version", "办件已被他人更新"
    help = ("请求所依据的办件版本 (If-Match) 已经过时: 在您读取之后,"
            " 他人或系统已更新了该办件。答复的 current_version 是当前版本。"
            "请重新读取办件, 确认后以新的 ETag 重试; 什么都没有写入。")


class PreconditionRequired(EngineError):
    """A change to a case came without ``If-Match``: the client must say which version it saw."""

    status, type, title = 428, "/problems/precondition-required", "缺少 If-Match"
    help = ("修改办件的请求必须带 If-Match 请求头, 写明您所看到的办件版本 (读取办件时答复的 ETag),"
            " 以免覆盖他人的更新。读取办件后带上 ETag 重试。")


class Conflict(EngineError):
    status, type, title = 409, "/problems/conflict", "冲突"
    help = ("请求与对象的当前情况冲突, 例如运单已签收不能再登记状态、扫描页已撤回、会议室已关闭。"
            "detail 说明原因; 请读取对象的当前情况后再决定。")


class Unavailable(EngineError):
    status, type, title = 503, "/problems/unavailable", "服务暂不可用"
    help = ("产品所依赖的部件 (数据库、对象存储、后台计算进程) 暂时不可用或繁忙。"
            "请求未生效; 稍后重试, 若持续出现请联系运维人员。")
