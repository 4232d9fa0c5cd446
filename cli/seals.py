"""``tongban seals …`` (units' electronic seals) and ``tongban verify FILE.pdf``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings

seals_app = typer.Typer(help="电子印章: 为成员单位生成或导入签章密钥与证书", no_args_is_help=True)

# Exit codes of `tongban verify`: what a script checking a file needs to tell apart.
VALID, INVALID, UNREADABLE = 0, 1, 2


def _session():  # type: ignore[no-untyped-def]
    from storage import migrate
    from storage.db import get_engine, session_scope

    engine = get_engine()
    migrate.upgrade(engine)
    return session_scope(engine)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"错误: {message}", err=True)
    return typer.Exit(code)


@seals_app.command("create")
def seals_create(unit: Annotated[str, typer.Argument(help="成员单位编号 (联盟目录 units 中的 id)")]) -> None:
    """为单位生成签章密钥和自签名证书 (ECDSA P-256); 原有印章停用, 但仍用于校验它签过的文件。"""
    from core.clock import local
    from engine import seals
    from engine.errors import EngineError

    try:
        with _session() as session:
            info = seals.create(session, unit)
    except EngineError as err:
        raise _fail(err.detail) from None
    typer.echo(f"已为 {info.unit_name} ({info.unit_id}) 生成电子印章: 证书指纹 {info.fingerprint}, "
               f"有效至 {local(info.not_after):%Y-%m-%d}")


@seals_app.command("import")
def seals_import(
    unit: Annotated[str, typer.Argument(help="成员单位编号")],
    file: Annotated[Path, typer.Argument(help="单位 CA 签发的 PKCS#12 文件 (.p12/.pfx)")],
    password_env: Annotated[str, typer.Option(help="从该环境变量读取 PKCS#12 密码 (未设置时提示输入)")]
    = "TONGBAN_P12_PASSWORD",
) -> None:
    """导入单位 CA 签发的签章证书和私钥 (PKCS#12); 原有印章停用, 但仍用于校验它签过的文件。"""
    from core.clock import local
    from engine import seals
    from engine.errors import EngineError

    try:
        data = file.read_bytes()
    except OSError as err:
        raise _fail(f"读不到 {file}: {err.strerror}", 2) from None
    password = os.environ.get(password_env)
    if password is None:
        password = typer.prompt("PKCS#12 密码", hide_input=True, default="", show_default=False)
    try:
        with _session() as session:
            info = seals.import_p12(session, unit, data, password.encode() if password else None)
    except EngineError as err:
        raise _fail(err.detail) from None
    typer.echo(f"已为 {info.unit_name} ({info.unit_id}) 导入电子印章: {info.subject}, 证书指纹 {info.fingerprint}, "
               f"有效至 {local(info.not_after):%Y-%m-%d}")


@seals_app.command("list")
def seals_list() -> None:
    """列出各单位的电子印章 (在用与已停用)。"""
    from core.clock import local
    from engine import seals

    with _session() as session:
        rows = seals.list_seals(session)
    if not rows:
        typer.echo("尚无电子印章 (tongban seals create 单位编号 可生成)")
    for i in rows:
        state = "在用" if i.current else "停用"
        source = "自签名" if i.source == "created" else "CA 签发"
        typer.echo(f"{i.unit_id:<14} {i.unit_name}  {state}  {source}  有效至 {local(i.not_after):%Y-%m-%d}  "
                   f"{i.fingerprint[:16]}…")


@seals_app.command("key")
def seals_key() -> None:
    """打印本安装的印章密钥 (未设置 TONGBAN_SEAL_KEY 时为首次生成的密钥): 各地区工作机器配置同一个才能签章。"""
    from core.install_secrets import install_secret

    typer.echo(install_secret("seal-key", get_settings().seal_key).decode())


def verify_file(file: Annotated[Path, typer.Argument(help="要校验的 PDF 文件")]) -> None:
    """校验 PDF 的电子签章与平台记录; 退出码 0 有效, 1 无效 (被改动、未签章、非本平台印章), 2 读不到文件。"""
    from engine import seals

    try:
        if file.stat().st_size > seals.MAX_VERIFY_BYTES:
            raise _fail(f"{file} 超过 {seals.MAX_VERIFY_BYTES // 1024 // 1024} MB", UNREADABLE)
        data = file.read_bytes()
    except OSError as err:
        raise _fail(f"读不到 {file}: {err.strerror}", UNREADABLE) from None
    with _session() as session:
        report = seals.verify_pdf(data, session)
        rows = seals.report_rows(report)
    typer.echo(f"文件: {file}")
    for label, value in rows:
        typer.echo(f"{label}: {value}")
    raise typer.Exit(VALID if report.valid else INVALID)
