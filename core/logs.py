"""Log records as one line each, plain or JSON, with a UTC timestamp and the request's id.

``configure()`` is called by every process that starts (the API app, a drainer, the dispatcher):
it installs one handler on the root logger, replacing the one it installed before, and hands
uvicorn's own loggers to it so that every line of a process has the same shape. The request id
(``X-Request-ID``, api.observe) travels in a context variable: every record written while a
request is served carries it, the access log's included.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from core.settings import get_settings

request_id: ContextVar[str | None] = ContextVar("tongban_request_id", default=None)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_MARK = "_tongban_handler"


def _ts(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _ts(record), "level": record.levelname, "logger": record.name,
                               "message": record.getMessage(), "role": self.role}
        if rid := request_id.get():
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = request_id.get()
        line = f"{_ts(record)} {record.levelname:<7} {record.name}{f' [{rid}]' if rid else ''} {record.getMessage()}"
        quiet = getattr(record, "_quiet", ())  # fields the message itself already states
        extra = [f"{k}={v}" for k, v in vars(record).items()
                 if k not in _STANDARD and not k.startswith("_") and k not in quiet]
        if extra:
            line += " " + " ".join(extra)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(role: str) -> None:
    """Shape this process's logs as the settings say (idempotent)."""
    s = get_settings()
    root = logging.getLogger()
    # Ours from a previous call, and Prefect's console handler (its logging.yml puts one on the
    # root when prefect is imported): one line per record, in this shape. Call this after prefect
    # was imported; Prefect's own processes (its worker, flow-run processes) keep their logging.
    for h in [h for h in root.handlers
              if getattr(h, _MARK, False) or type(h).__module__.startswith("prefect.")]:
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _MARK, True)
    handler.setFormatter(JsonFormatter(role) if s.log_format == "json" else PlainFormatter())
    root.addHandler(handler)
    root.setLevel(s.log_level)
    # uvicorn configures its loggers with handlers of their own that do not propagate.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # One line per HTTP call to the Prefect server (drainers, the dispatcher) drowns the rest;
    # the state machine library's line per callback, likewise.
    for noisy in ("httpx", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
