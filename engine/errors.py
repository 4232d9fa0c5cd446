"""Errors the engine raises; the API turns each into RFC 9457 problem details."""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    status = 400
    type = "about:blank"
    title = "请求错误"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(EngineError):
    status, type, title = 404, "/problems/not-found", "未找到"


class Unauthenticated(EngineError):
    status, type, title = 401, "/problems/unauthenticated", "未认证"


class Forbidden(EngineError):
    """Extra ``missing`` lists what the actor lacks: a role, the holding counter, assignment."""

    status, type, title = 403, "/problems/forbidden", "无权操作"


class InvalidInput(EngineError):
    """Extra ``errors`` is a list of {field, reason}."""

    status, type, title = 422, "/problems/invalid-input", "输入无效"

    def __init__(self, field: str, reason: str, **extra: Any) -> None:
        super().__init__(f"{field}: {reason}", errors=[{"field": field, "reason": reason}], **extra)


class TriggerNotOpen(EngineError):
    """The trigger does not apply to the case's state; extra ``open_triggers`` lists what does."""

    status, type, title = 409, "/problems/trigger-not-open", "当前状态不能执行此操作"


class GuardFailed(EngineError):
    status, type, title = 409, "/problems/guard-failed", "前置条件未满足"


class StaleVersion(EngineError):
    status, type, title = 412, "/problems/stale-version", "案件已被他人更新"


class PreconditionRequired(EngineError):
    """A change to a case came without ``If-Match``: the client must say which version it saw."""

    status, type, title = 428, "/problems/precondition-required", "缺少 If-Match"


class Conflict(EngineError):
    status, type, title = 409, "/problems/conflict", "冲突"


class Unavailable(EngineError):
    status, type, title = 503, "/problems/unavailable", "服务暂不可用"
