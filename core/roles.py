"""What each distributed role must be told explicitly, checked before it starts.

A default that is right for one embedded machine is wrong on a worker: a local SQLite file, a
local object folder and ``http://127.0.0.1:8000`` in certificate links all "work" and quietly
split or break the data. So ``tongban worker`` and ``tongban dispatch`` refuse to start unless
these were set (environment, ``.env`` or the role's ``--env-file``), naming every one missing,
and so does ``tongban serve --no-flows`` (role ``api``: an API node of a distributed setup, whose
automated work the workers do; the embedded default needs none of them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from core.settings import Settings


def _given(s: Settings, field: str) -> bool:
    return field in s.model_fields_set


def problems(role: str, s: Settings, env: Mapping[str, str] | None = None) -> list[str]:
    """Why ``role`` may not start with these settings (zh-CN, one line each); empty: it may."""
    env = os.environ if env is None else env
    out: list[str] = []
    if role in ("worker", "dispatcher") and not env.get("PREFECT_API_URL"):
        out.append("PREFECT_API_URL: 未设置 (分布式 Prefect 服务器的地址, 如 http://prefect:4200/api)")
    if role in ("api", "worker", "dispatcher"):
        if not _given(s, "database_url"):
            out.append("TONGBAN_DATABASE_URL: 未设置 (共享的 PostgreSQL 办件数据库; "
                       "不设置时会使用本机 SQLite 文件)")
        elif not s.database_url.startswith("postgresql"):
            out.append("TONGBAN_DATABASE_URL: 分布式模式须为 PostgreSQL (postgresql+psycopg://…)")
    if role in ("api", "worker"):  # the API stores scans and evidence and prints links too
        if not _given(s, "public_base_url"):
            out.append("TONGBAN_PUBLIC_BASE_URL: 未设置 (证照二维码与核验链接的公网地址; "
                       "不设置时写入 http://127.0.0.1:8000)")
        if s.object_store == "s3":
            for field, name in (("s3_endpoint", "TONGBAN_S3_ENDPOINT"),
                                ("s3_access_key", "TONGBAN_S3_ACCESS_KEY"),
                                ("s3_secret_key", "TONGBAN_S3_SECRET_KEY")):
                if not _given(s, field):
                    out.append(f"{name}: 未设置 (共享对象存储)")
        elif not s.object_dir_shared:
            out.append("TONGBAN_OBJECT_STORE: 未设为 s3 (共享对象存储, 另需 TONGBAN_S3_ENDPOINT、"
                       "TONGBAN_S3_ACCESS_KEY、TONGBAN_S3_SECRET_KEY); 若 TONGBAN_OBJECT_DIR 是各节点"
                       "共享挂载的目录, 设 TONGBAN_OBJECT_DIR_SHARED=true")
    return out


def load_env_file(path: Path) -> None:
    """Put a role's settings file into the environment (what is set already wins), so the flow
    runs a worker starts see the same settings."""
    from dotenv import dotenv_values

    for key, value in dotenv_values(path).items():
        if value is not None:
            os.environ.setdefault(key, value)
