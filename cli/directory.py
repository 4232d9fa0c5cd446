"""``tongban directory``: check, import, show and diff the alliance directory (联盟目录)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

directory_app = typer.Typer(help="联盟目录: 地区、成员单位、窗口、工作人员的校验、导入、查看与比较",
                            no_args_is_help=True)


def _engine():  # type: ignore[no-untyped-def]
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)  # as every command that writes the database
    return engine


def _checked(path: Path):  # type: ignore[no-untyped-def]
    from engine.directory_manage import DirectoryError, check_file

    try:
        return check_file(path)
    except DirectoryError as err:
        for p in err.problems:
            typer.echo(p.format(), err=True)
        typer.echo(f"{len(err.problems)} 个问题", err=True)
        raise typer.Exit(1) from None


@directory_app.command("check")
def check(path: Annotated[Path, typer.Argument(help="目录文件 (YAML)")]) -> None:
    """校验目录文件; 每个问题输出为 文件:行:列: 说明。"""
    from engine.directory_manage import summary

    c = _checked(path)
    n = summary(c.document)
    typer.echo(f"全部通过: {n['regions']} 个地区, {n['units']} 个成员单位, {n['counters']} 个窗口, "
               f"{n['clerks']} 名工作人员 (内容哈希 {c.content_hash[:12]})")


@directory_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="目录文件 (YAML)")],
    by: Annotated[str, typer.Option(help="导入人 (记入版本)")] = "cli",
) -> None:
    """导入目录 (一个事务; 内容未变则不产生新版本); 打印变更及新建工作人员的令牌 (只显示这一次)。"""
    from core.settings import get_settings
    from engine.directory_manage import import_directory
    from engine.errors import EngineError
    from storage.db import session_scope

    c = _checked(path)
    try:
        with session_scope(_engine()) as session:
            r = import_directory(session, c, by, token_days=get_settings().token_days)
    except EngineError as err:
        typer.echo(f"错误: {err.detail}", err=True)
        raise typer.Exit(1) from None
    if not r.changed:
        typer.echo(f"未变化: 当前为第 {r.version} 版 ({r.content_hash[:12]})")
        return
    typer.echo(f"已导入第 {r.version} 版 ({r.content_hash[:12]}), {len(r.changes)} 处变更:")
    for line in r.changes:
        typer.echo(f"  {line}")
    for t in r.tokens:
        typer.echo(f"新建或重新启用的工作人员 {t['name']} 窗口 {t['counter']} 角色 {t['roles']} 令牌 {t['token']}")
    for line in r.changes:
        if line.startswith("+ 地区 "):  # its deployment is made from the directory by its worker
            code = line.removeprefix("+ 地区 ").split(":", 1)[0]
            typer.echo(f"新地区 {code}: 在该地区运行 tongban worker --region {code} (自动创建工作池与部署), "
                       "或 tongban directory deploy")


@directory_app.command("show")
def show(
    version: Annotated[int | None, typer.Option(help="版本 (默认当前版本)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出整个目录 (JSON)")] = False,
) -> None:
    """查看当前 (或指定) 版本的目录与版本历史。"""
    import json

    from engine.directory_manage import get_version, summary, versions
    from storage.db import session_scope

    with session_scope(_engine()) as session:
        row = get_version(session, version)
        history = [(v.version, v.content_hash, v.imported_by, v.imported_at) for v in versions(session)]
        doc = dict(row.document) if row else None
    if doc is None or row is None:
        typer.echo("尚未导入目录" if version is None else f"没有第 {version} 版", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=1))
        return
    n = summary(doc)
    typer.echo(f"第 {row.version} 版 {row.content_hash[:12]}: {n['regions']} 个地区, {n['units']} 个成员单位, "
               f"{n['counters']} 个窗口, {n['clerks']} 名工作人员")
    for r in doc["regions"]:
        count = sum(1 for c in doc["counters"] if c["region"] == r["code"])
        typer.echo(f"  {r['code']} {r['name']}: {count} 个窗口")
    typer.echo("版本历史:")
    for v, h, by, at in history:
        typer.echo(f"  第 {v} 版 {h[:12]} {by} {at.isoformat()}")


@directory_app.command("diff")
def diff(
    path: Annotated[Path | None, typer.Argument(help="目录文件; 与当前 (或 --from) 版本比较")] = None,
    from_: Annotated[int | None, typer.Option("--from", help="起始版本 (默认当前版本)")] = None,
    to: Annotated[int | None, typer.Option(help="目标版本 (不给文件时)")] = None,
) -> None:
    """比较目录文件与已导入的版本, 或两个版本: + 新增, - 删除, ~ 修改。退出码 0 无差异, 1 有差异。"""
    from engine.directory_manage import diff as compare
    from engine.directory_manage import empty, get_version
    from storage.db import session_scope

    new = _checked(path).document if path is not None else None
    with session_scope(_engine()) as session:
        old_row = get_version(session, from_)
        old = dict(old_row.document) if old_row else empty()
        if new is None:
            to_row = get_version(session, to)
            if to_row is None:
                typer.echo(f"没有第 {to} 版", err=True)
                raise typer.Exit(2)
            new = dict(to_row.document)
    lines = compare(old, new)
    for line in lines:
        typer.echo(line)
    if lines:
        raise typer.Exit(1)
    typer.echo("无差异")


@directory_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="目录中的工作人员姓名")],
    counter: Annotated[str | None, typer.Option(help="所属窗口编号 (督查等可不填)")] = None,
) -> None:
    """为目录中的工作人员签发新令牌 (只显示这一次)。"""
    from core.settings import get_settings
    from engine.actors import issue_token
    from engine.directory_manage import directory_clerk
    from storage.db import session_scope

    with session_scope(_engine()) as session:
        clerk = directory_clerk(session, name, counter)
        if clerk is None:
            typer.echo(f"目录中没有窗口 {counter or '(无)'} 的工作人员 {name}", err=True)
            raise typer.Exit(1)
        value = issue_token(session, clerk, get_settings().token_days)
    typer.echo(value)


@directory_app.command("deploy")
def deploy() -> None:
    """在 Prefect 服务器 (PREFECT_API_URL) 上为目录中的每个地区创建工作池和自动任务部署。"""
    import os

    import sqlalchemy as sa

    from flows.deploy import deploy_regions
    from storage.tables import Region

    api = os.environ.get("PREFECT_API_URL")
    if not api:
        typer.echo("错误: 未设置 PREFECT_API_URL (Prefect 服务器的地址, 如 http://prefect:4200/api)", err=True)
        raise typer.Exit(2)
    with _engine().connect() as conn:
        regions = dict(conn.execute(sa.select(Region.code, Region.name).order_by(Region.code)).all())
    done = deploy_regions(api, regions)  # type: ignore[arg-type]
    for name in sorted(done):
        typer.echo(f"  {name}")
    typer.echo(f"已部署 {len(done)} 个地区的自动任务")


@directory_app.command("roles")
def roles(
    prefix: Annotated[str, typer.Option(help="角色名前缀 (地区角色为 <前缀>_<行政区划代码>)")] = "tongban_worker",
    print_only: Annotated[bool, typer.Option("--print", help="只打印将执行的 SQL, 不执行")] = False,
) -> None:
    """为目录中的每个地区创建 PostgreSQL 角色与行级安全策略: 地区工作进程只能领取、完成本地区的任务。"""
    import sqlalchemy as sa

    from engine import directory_roles
    from storage.tables import Region

    engine = _engine()
    if print_only:
        with engine.connect() as conn:
            regions = list(conn.execute(sa.select(Region.code).order_by(Region.code)).scalars())
        for sql in directory_roles.statements(regions, prefix, str(engine.url.database or "")):
            typer.echo(sql + ";")
        return
    try:
        made = directory_roles.apply(engine, prefix)
    except ValueError as err:
        typer.echo(f"错误: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"已为 {len(made)} 个地区设置角色与策略: {', '.join(made)}")
    example = made[0] if made else f"{prefix}_<地区>"
    typer.echo(f"为工作进程创建登录角色, 例如: CREATE ROLE qd_worker LOGIN PASSWORD '…' IN ROLE {example};"
               " 再把它写入该工作进程的 TONGBAN_DATABASE_URL")
    typer.echo(f"Janus 所在机器上的视频录像队列工作进程用 IN ROLE {prefix}_{directory_roles.VIDEO},"
               f" 调度进程 (tongban dispatch) 用 IN ROLE {prefix}_dispatcher")
