"""``tongban``: one entry point to start and inspect everything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli.directory import directory_app
from cli.kiosk_names import kiosk_app
from cli.notify import notify_app
from cli.seals import seals_app, verify_file
from cli.video import video_app
from core.settings import get_settings

app = typer.Typer(help="通办 Tongban — 跨域通办办件编排平台", no_args_is_help=True,
                  pretty_exceptions_enable=False)
items_app = typer.Typer(help="事项定义: 校验、发布、流程图", no_args_is_help=True)
clerks_app = typer.Typer(help="窗口工作人员与令牌", no_args_is_help=True)
db_app = typer.Typer(help="数据库迁移", no_args_is_help=True)
app.add_typer(items_app, name="items")
app.add_typer(clerks_app, name="clerks")
app.add_typer(db_app, name="db")
audit_app = typer.Typer(help="审计: 校验办件历史的哈希链与签名锚点", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
storage_app = typer.Typer(help="对象存储: 清理孤立对象、补做缩略图", no_args_is_help=True)
calendar_app = typer.Typer(help="节假日安排: 发布国务院办公厅通知的年度安排、查看工作日", no_args_is_help=True)
app.add_typer(calendar_app, name="calendar")
app.add_typer(storage_app, name="storage")
exchange_app = typer.Typer(help="办件数据交换: 按 GB/T 39046-2020 数据项导出办件, 供省级平台",
                           no_args_is_help=True)
app.add_typer(exchange_app, name="exchange")
app.add_typer(seals_app, name="seals")
app.add_typer(video_app, name="video")
app.command("verify")(verify_file)
jobs_app = typer.Typer(help="自动任务: 查看最终失败的任务并重新执行", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(directory_app, name="directory")
app.add_typer(notify_app, name="notify")
app.add_typer(kiosk_app, name="kiosk")


def _engine():  # type: ignore[no-untyped-def]
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)
    return engine


def started_line(host: str, port: int, database_url: str) -> str:
    """What ``serve`` prints once up; the database's password left out (startup logs are read widely)."""
    from sqlalchemy.engine import make_url

    where = make_url(database_url).render_as_string(hide_password=True)
    return f"通办已启动: http://{host}:{port}  (接口文档 /docs, 数据库 {where})"


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="监听地址")] = None,
    port: Annotated[int | None, typer.Option(help="端口")] = None,
    workers: Annotated[int | None, typer.Option(help="工作进程数")] = None,
    demo: Annotated[bool, typer.Option(help="载入演示事项、联盟窗口和工作人员")] = True,
    flows: Annotated[bool, typer.Option(help="在本进程内用 Prefect 执行自动任务 (嵌入模式)",
                                        envvar="TONGBAN_EMBEDDED_FLOWS")] = True,
    janus: Annotated[bool, typer.Option(help="同时按生成的配置启动本地 Janus 媒体服务 (视频 janus 后端)")] = False,
    env_file: Annotated[Path | None, typer.Option(
        "--env-file", help="本角色的设置文件 (KEY=VALUE, 如 deploy/api.env; 已设置的环境变量优先)")] = None,
    standalone: Annotated[bool, typer.Option(
        help="--no-flows 时仍按单机运行, 不检查分布式接口节点的必需设置 (仅用于开发与测试)")] = False,
) -> None:
    """启动服务 (默认: SQLite、演示事项目录与演示窗口)。"""
    import uvicorn

    from engine.demo import seed
    from storage.db import session_scope

    if env_file is not None:
        from core.roles import load_env_file

        given = getattr(ctx.get_parameter_source("flows"), "name", "DEFAULT") != "DEFAULT"
        load_env_file(env_file)
        get_settings.cache_clear()
        if not given and "TONGBAN_EMBEDDED_FLOWS" in os.environ:
            flows = get_settings().embedded_flows  # the file says whether this node drains the outbox
    if not flows and not standalone:  # an API node of a distributed setup: refuse what would split the data
        _role_settings("api", None)
    s = get_settings()
    engine = _engine()
    if demo:
        with session_scope(engine) as session:
            tokens = seed(session, s.catalog_dir, s.alliance_file, s.data_dir / "demo-tokens.json",
                          s.token_days)
        if not tokens:
            typer.echo("联盟目录已由运维导入, 未载入演示窗口和工作人员 (API 节点请用 --no-demo 启动)")
        else:
            typer.echo("演示工作人员登录令牌 (Authorization: Bearer <令牌>):")
        for t in tokens:
            typer.echo(f"  {t['name']:<6} 窗口 {t['counter']:<14} 角色 {t['roles']:<28} {t['token']}")
    host, port = host or s.host, port or s.port
    typer.echo(started_line(host, port, s.database_url))

    # Embedded: the app drains the outbox in-process (flows.embedded); workers read the env too.
    os.environ["TONGBAN_EMBEDDED_FLOWS"] = "true" if flows else "false"
    # The address given here is the one links on certificates and notices point at (unless
    # TONGBAN_PUBLIC_BASE_URL says otherwise): the app's processes read it from the environment.
    os.environ["TONGBAN_HOST"], os.environ["TONGBAN_PORT"] = host, str(port)
    local_janus = None
    if janus:
        from cli.video import start_for_serve

        local_janus = start_for_serve(s.data_dir / "janus")
    get_settings.cache_clear()
    try:
        uvicorn.run("api.app:serve_app", factory=True, **uvicorn_options(host, port, workers or s.workers))
    finally:
        if local_janus is not None:
            local_janus.stop()


def uvicorn_options(host: str, port: int, workers: int) -> dict[str, object]:
    """How ``serve`` runs uvicorn. Its proxy handling is off: by default it believes
    X-Forwarded-For from 127.0.0.1, which any local client can write. The app resolves forwarded
    headers itself, from TONGBAN_TRUSTED_PROXIES only (api.clientaddr), RFC 7239 Forwarded included."""
    return {"host": host, "port": port, "workers": workers, "log_level": "warning",
            "proxy_headers": False, "forwarded_allow_ips": ""}


@app.command("carrier-secret")
def carrier_secret() -> None:
    """打印与快递公司共享的回执签名密钥 (未设置 TONGBAN_CARRIER_SECRET 时为本机首次生成的密钥)。"""
    from core.install_secrets import install_secret

    typer.echo(install_secret("carrier-secret", get_settings().carrier_secret).decode())


EnvFile = Annotated[Path | None, typer.Option("--env-file", help="本角色的设置文件 (KEY=VALUE; 已设置的环境变量优先)")]


def _role_settings(role: str, env_file: Path | None) -> None:
    """Load the role's settings file and refuse to start with anything required missing."""
    from core.roles import load_env_file, problems

    if env_file is not None:
        load_env_file(env_file)
        get_settings.cache_clear()
    from core import logs

    logs.configure(role)
    missing = problems(role, get_settings())
    if missing:
        who = {"worker": "工作进程", "dispatcher": "调度进程", "api": "接口服务 (--no-flows)"}[role]
        typer.echo(f"错误: 缺少必需的设置, {who}不启动:", err=True)
        for line in missing:
            typer.echo(f"  - {line}", err=True)
        raise typer.Exit(2)


@app.command()
def worker(
    region: Annotated[str, typer.Option(
        help="行政区划代码 (联盟目录中的地区), 或视频录像队列 video (在 Janus 所在机器上); 工作池为 counter-<region>")],
    deploy: Annotated[bool, typer.Option(help="先创建工作池并按联盟目录部署本地区的流程")] = True,
    listen: Annotated[bool, typer.Option(help="同时运行常驻任务执行器 (PostgreSQL LISTEN/NOTIFY, 亚秒级接件)")] = True,
    env_file: EnvFile = None,
) -> None:
    """运行一个地区的 Prefect 工作进程 (分布式模式)。SIGTERM: 手头任务完成或交还后退出 (10 秒内)。"""
    import os

    from flows.supervise import run_worker

    pool = f"counter-{region}"
    _role_settings("worker", env_file)
    regions = _directory_regions()
    if region == get_settings().video_job_queue:
        # Not a region: the video queue (Janus's recordings), run by a worker on Janus's machine.
        regions = {region: "视频录像"}
    if region not in regions:  # before anything is created on the server
        typer.echo(f"错误: 未知地区 {region}: 联盟目录中没有这个地区 (已有地区: {'、'.join(sorted(regions))}); "
                   "用 tongban directory import 或目录管理接口加入后再启动", err=True)
        raise typer.Exit(2)
    checks = []
    if deploy:
        from flows.deploy import deploy_regions, ensure_sweep
        from flows.supervise import Every

        api = os.environ["PREFECT_API_URL"]
        deploy_regions(api, {region: regions[region]})
        if ensure_sweep(api, pool):
            typer.echo(f"到期检查 (deadline-sweep) 由工作池 {pool} 执行")

        def sweep() -> None:  # again while running: the pool that had it may stop at any time
            if ensure_sweep(api, pool):
                typer.echo(f"到期检查 (deadline-sweep) 改由工作池 {pool} 执行")

        checks.append(Every(get_settings().sweep_check_seconds, sweep))
        from core import logs

        logs.configure("worker")  # again, now that prefect (its settings) is imported
    typer.echo(f"地区 {region} 的工作进程: prefect worker start --pool {pool} --type process"
               + (f"; 常驻任务执行器 python -m flows.listen --region {region}" if listen else ""))
    raise typer.Exit(run_worker(pool, region, listen, checks))


def _directory_regions() -> dict[str, str]:
    """The regions of the alliance directory (code → name), or exit 2 saying why not."""
    import sqlalchemy as sa

    from storage.db import get_engine
    from storage.tables import Region

    try:
        with get_engine().connect() as conn:
            return dict(conn.execute(sa.select(Region.code, Region.name)).all())  # type: ignore[arg-type]
    except sa.exc.SQLAlchemyError as exc:
        where = sa.engine.make_url(get_settings().database_url).render_as_string(hide_password=True)
        typer.echo(f"错误: 读不到联盟目录 (办件数据库 {where}): {type(exc).__name__}: "
                   f"{str(exc).splitlines()[0][:300]}", err=True)
        raise typer.Exit(2) from None


@app.command("prefect", context_settings={"allow_extra_args": True,
                                        "ignore_unknown_options": True})
def prefect_server(ctx: typer.Context) -> None:
    """运行 Prefect 命令 (含与 SQLAlchemy 2.1 的兼容修正), 例如 tongban prefect server start。"""
    from flows.prefect_server import main as prefect_main

    prefect_main(list(ctx.args))


@app.command()
def dispatch(
    poll: Annotated[float, typer.Option(help="检查待办任务的间隔(秒)")] = 1.0,
    env_file: EnvFile = None,
) -> None:
    """分布式模式: 某地区有待办任务时立即在其工作池启动一次流程运行。"""
    import os

    from core import logs
    from flows.dispatch import Dispatcher

    _role_settings("dispatcher", env_file)
    dispatcher = Dispatcher(_engine(), os.environ["PREFECT_API_URL"])
    logs.configure("dispatcher")  # again, now that prefect (its settings) is imported
    dispatcher.run_forever(poll)


@items_app.command("check")
def items_check(paths: Annotated[list[Path], typer.Argument(help="事项定义文件或目录")]) -> None:
    """校验事项定义及其旁边 guides/ 中的办事指南; 每个问题输出为 文件:行:列: 说明。"""
    from engine.catalog import read_file
    from engine.guide import check_guides
    from states.loader import DefinitionError, iter_definition_files
    from states.problems import Problem
    from states.yamlpos import load_located

    problems, count = [], 0
    for arg in paths:
        items: list[tuple[str, Problem]] = []  # each item's code and where its definition names it
        broken = False
        for f in iter_definition_files([arg]):
            count += 1
            try:
                item = read_file(f)
            except DefinitionError as err:
                problems.extend(err.problems)
                broken = True
                continue
            pos = load_located(item.source).at(("code",))
            items.append((item.definition.code, Problem(str(f), pos.line, pos.col, "")))
        # A folder is the whole catalog: its guides are checked both ways (unless an item did not
        # load: its guide would look orphaned); a file, only its own.
        problems.extend(check_guides(items, arg if arg.is_dir() else arg.parent,
                                     complete=arg.is_dir() and not broken))
    problems = list(dict.fromkeys(problems))  # a guide checked for two arguments is reported once
    for p in problems:
        typer.echo(p.format(), err=True)
    if problems:
        typer.echo(f"{len(problems)} 个问题, 共检查 {count} 个文件", err=True)
        raise typer.Exit(1)
    typer.echo(f"全部通过: {count} 个文件")


@items_app.command("publish")
def items_publish(paths: Annotated[list[Path], typer.Argument(help="事项定义文件或目录")]) -> None:
    """发布事项版本 (同一版本号内容不同将被拒绝; 运行中的办件保持原版本)。"""
    from engine.catalog import publish, read_file
    from engine.errors import EngineError
    from states.loader import DefinitionError, iter_definition_files
    from storage.db import session_scope

    try:
        loaded = [read_file(f) for f in iter_definition_files(paths)]
        with session_scope(_engine()) as session:
            for item in loaded:
                row, created = publish(session, item, "cli")
                typer.echo(f"{row.code} v{row.version} {'已发布' if created else '未变化'} ({row.content_hash[:12]})")
    except DefinitionError as err:
        for p in err.problems:
            typer.echo(p.format(), err=True)
        raise typer.Exit(1) from None
    except EngineError as err:
        typer.echo(f"错误: {err.detail}", err=True)
        raise typer.Exit(1) from None


@items_app.command("graph")
def items_graph(
    code: Annotated[str, typer.Argument(help="事项实施编码, 或定义文件路径")],
    svg: Annotated[Path | None, typer.Option(help="同时写出 SVG 文件")] = None,
    version: Annotated[int | None, typer.Option(help="版本 (默认最新)")] = None,
) -> None:
    """输出事项的 Mermaid 状态图。"""
    from engine.catalog import compiled, get_version, read_catalog, read_file
    from engine.errors import NotFound
    from states.diagram import to_mermaid, to_svg
    from states.loader import DefinitionError
    from storage.db import session_scope

    try:
        if Path(code).is_file():
            d = read_file(Path(code)).definition
        else:
            try:
                with session_scope(_engine()) as session:
                    d = compiled(session, get_version(session, code, version).id).definition
            except NotFound:
                found = [i.definition for i in read_catalog(get_settings().catalog_dir)
                         if i.definition.code == code and version in (None, i.definition.version)]
                if not found:
                    typer.echo(f"未找到事项 {code}", err=True)
                    raise typer.Exit(1) from None
                d = max(found, key=lambda x: x.version)
    except DefinitionError as err:
        for p in err.problems:
            typer.echo(p.format(), err=True)
        raise typer.Exit(1) from None
    typer.echo(to_mermaid(d), nl=False)
    if svg:
        svg.write_text(to_svg(d), encoding="utf-8")
        typer.echo(f"SVG 已写入 {svg}", err=True)


@clerks_app.command("add")
def clerks_add(
    name: Annotated[str, typer.Option(help="姓名")],
    roles: Annotated[str, typer.Option(help="角色, 逗号分隔: clerk,reviewer,approver,inspector,supervisor,designer,"
                                            "exchange (数据交换账号)")],
    counter: Annotated[str | None, typer.Option(help="所属窗口编号 (督查、设计人员、数据交换账号可不填)")] = None,
) -> None:
    """新增工作人员并打印其登录令牌 (令牌只显示这一次)。"""
    from engine.actors import add_clerk
    from engine.errors import EngineError
    from storage.db import session_scope

    try:
        with session_scope(_engine()) as session:
            clerk, token = add_clerk(session, name, counter, [r.strip() for r in roles.split(",") if r.strip()],
                                     get_settings().token_days)
            typer.echo(f"已创建工作人员 #{clerk.id} {clerk.name}; 令牌: {token}")
    except EngineError as err:
        typer.echo(f"错误: {err.detail}", err=True)
        raise typer.Exit(1) from None


@clerks_app.command("revoke")
def clerks_revoke(clerk_id: Annotated[int, typer.Argument(help="工作人员编号")]) -> None:
    """吊销该工作人员的全部令牌。"""
    from engine.actors import revoke_tokens
    from storage.db import session_scope

    with session_scope(_engine()) as session:
        n = revoke_tokens(session, clerk_id)
    typer.echo(f"已吊销 {n} 个令牌")


@clerks_app.command("supervise")
def clerks_supervise(
    clerk_id: Annotated[int, typer.Argument(help="督查人员编号")],
    regions: Annotated[list[str], typer.Argument(help="督查的行政区划代码")],
) -> None:
    """为督查人员增加督查区域 (看板、队列与办件只显示这些区域)。"""
    from engine.dashboard import set_supervised_regions
    from engine.errors import EngineError
    from storage.db import session_scope
    from storage.tables import Clerk

    try:
        with session_scope(_engine()) as session:
            clerk = session.get(Clerk, clerk_id)
            if clerk is None:
                raise typer.BadParameter(f"工作人员 #{clerk_id} 不存在")
            set_supervised_regions(session, clerk, regions)
            typer.echo(f"{clerk.name} 督查区域: {', '.join(regions)}")
    except EngineError as err:
        typer.echo(f"错误: {err.detail}", err=True)
        raise typer.Exit(1) from None


@audit_app.command("verify")
def audit_verify() -> None:
    """逐案校验历史哈希链, 并对照最新的历史锚点 (校验其签名) 指出被改写、截断或删除的办件; 有问题时退出码为 1。"""
    from core.clock import local, zone_label
    from engine import anchors
    from engine.history import Break, verify
    from storage.db import session_scope
    from storage.object_factory import get_store
    from storage.objects import StoreUnavailable

    try:
        anchor, refused = anchors.latest(get_store(), anchors.public_key())
    except StoreUnavailable as err:
        typer.echo(f"错误: 读不到历史锚点: {err}", err=True)
        raise typer.Exit(2) from None
    for r in refused:
        typer.echo(f"锚点 {r.bucket}/{r.key} 被拒绝: {r.reason}", err=True)
    if anchor is None:
        typer.echo("尚无历史锚点: 只校验了各办件的哈希链本身 (tongban audit anchor 可写入一个)")
    broken = 0
    with session_scope(_engine()) as session:
        for result in verify(session, anchored=anchor.cases if anchor else None):
            if isinstance(result, Break):
                broken += 1
                where = f" 第 {result.seq} 条事件" if result.seq is not None else ""
                typer.echo(f"办件 {result.number}{where}: {result.reason}", err=True)
            else:
                against = (f", 对照锚点 #{anchor.seq} ({local(anchor.at):%Y-%m-%d %H:%M:%S} {zone_label()}, "
                           f"{len(anchor.cases)} 个办件)") if anchor else ""
                typer.echo(f"已校验 {result} 个办件, {broken} 个被篡改{against}")
    if broken or refused:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    force: Annotated[bool, typer.Option("--force", help="自上一锚点以来没有变化也写入")] = False,
) -> None:
    """把每个办件的版本和最新哈希签名后写入证据存储 (对象锁定), 作为历史锚点; 与上一锚点不符的办件退出码为 1。"""
    from engine import anchors
    from storage.db import session_scope
    from storage.objects import StoreUnavailable

    try:
        with session_scope(_engine()) as session:
            w = anchors.write(session, force=force)
    except StoreUnavailable as err:
        typer.echo(f"错误: {err}", err=True)
        raise typer.Exit(2) from None
    for r in w.refused:
        typer.echo(f"锚点 {r.bucket}/{r.key} 被拒绝: {r.reason}", err=True)
    for b in w.carried:
        typer.echo(f"办件 {b.number} 与上一锚点不符, 新锚点沿用上一锚点的记录: {b.reason}", err=True)
    if w.anchor is not None:
        typer.echo(f"已写入历史锚点 #{w.anchor.seq}: {len(w.anchor.cases)} 个办件, {w.anchor.bucket}/{w.anchor.key}")
    elif w.previous is not None:
        typer.echo(f"自锚点 #{w.previous.seq} 以来没有变化, 未写入 (加 --force 照写)")
    if w.carried or w.refused:
        raise typer.Exit(1)


@audit_app.command("public-key")
def audit_public_key() -> None:
    """打印历史锚点的公钥 (Ed25519, 十六进制): 只做校验的机器配置 TONGBAN_ANCHOR_PUBLIC_KEY 即可。"""
    from engine import anchors

    typer.echo(anchors.public_hex(anchors.public_key()))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """把数据库迁移到最新结构。"""
    _engine()
    typer.echo("数据库已是最新结构")


@storage_app.command("sweep")
def storage_sweep(
    delete: Annotated[bool, typer.Option("--delete", help="真正删除 (默认只列出)")] = False,
    grace: Annotated[int | None, typer.Option(help="宽限秒数: 更新的对象不算孤立")] = None,
) -> None:
    """列出 (加 --delete 时删除) 没有任何记录引用、且超过宽限期的对象。"""
    from storage.db import session_scope
    from storage.object_factory import get_store
    from storage.objects import StoreUnavailable
    from storage.sweep import sweep

    s = get_settings()
    try:
        with session_scope(_engine()) as session:
            report = sweep(session, get_store(), prefix=s.bucket_prefix, delete=delete,
                           grace_seconds=s.sweep_grace_seconds if grace is None else grace)
    except StoreUnavailable as err:
        typer.echo(f"错误: {err}", err=True)
        raise typer.Exit(2) from None
    for o in report.orphans:
        mark = "已删除" if o in report.deleted else "保留期内" if o in report.retained else "孤立"
        typer.echo(f"{mark}\t{o.bucket}/{o.key}\t{o.size}\t{o.created_at}")
    typer.echo(f"孤立 {len(report.orphans)} 个, 已删除 {len(report.deleted)} 个, "
               f"宽限期内 {report.young} 个, 被引用 {report.referenced} 个"
               + ("" if delete else " (试运行; 加 --delete 删除)"))


@storage_app.command("thumbnails")
def storage_thumbnails() -> None:
    """补做缺失的缩略图 (存储故障或进程重启之后)。"""
    from engine.thumbnails import backfill
    from storage.object_factory import get_store

    typer.echo(f"已生成 {backfill(_engine(), get_store())} 个缩略图")


def main() -> None:
    app()


@jobs_app.command("failed")
def jobs_failed(
    region: Annotated[str | None, typer.Option(help="只看此地区")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多列出多少个 (最早失败的在前)")] = 200,
) -> None:
    """列出已用尽重试次数的自动任务 (最近错误、次数、失败时间)。"""
    from core.clock import local
    from flows.failed_jobs import count_failed, failed

    engine = _engine()
    rows = failed(engine, region, limit)
    for r in rows:
        at = local(r["finished_at"]).isoformat(timespec="seconds") if r["finished_at"] else "-"
        typer.echo(f"{r['id']}  {r['number']}  {r['job']}  地区 {r['region_code']}  "
                   f"{r['attempts']} 次  {at}\n    {(r['last_error'] or '')[:300]}")
    total = count_failed(engine, region)
    typer.echo(f"共 {total} 个失败任务" + (f", 以上列出最早的 {len(rows)} 个 (--limit)" if total > len(rows) else ""))


@jobs_app.command("retry")
def jobs_retry(
    job_ids: Annotated[list[str] | None, typer.Argument(help="任务编号 (tongban jobs failed 列出)")] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="全部失败任务 (可与 --region 合用)")] = False,
    region: Annotated[str | None, typer.Option(help="只重试此地区")] = None,
) -> None:
    """把失败的任务重新排入待办 (重试次数清零), 由所在地区的工作进程执行。"""
    from flows.failed_jobs import retry

    if not job_ids and not all_failed:
        typer.echo("错误: 请给出任务编号, 或用 --all", err=True)
        raise typer.Exit(2)
    ids = retry(_engine(), job_ids or None, region)
    missing = sorted(set(job_ids or []) - set(ids))
    for j in missing:
        typer.echo(f"未找到失败任务 {j}", err=True)
    typer.echo(f"已重新排入 {len(ids)} 个任务")
    if missing:
        raise typer.Exit(1)


@calendar_app.command("import")
def calendar_import(
    file: Annotated[Path, typer.Argument(help="年度节假日安排文件 (YAML: year, notice, holidays, workdays)")],
) -> None:
    """发布一年的节假日安排 (发布后不可修改); 涉及该年的临时期限随即重算。"""
    from engine import deadlines, schedules
    from engine.errors import EngineError
    from storage.db import session_scope

    try:
        schedule = schedules.read_file(file)
        with session_scope(_engine()) as session:
            created = schedules.publish(session, schedule, "cli")
            redone = deadlines.recompute_provisional(session) if created else 0
    except schedules.ScheduleError as err:
        for p in err.problems:
            typer.echo(p.format(), err=True)
        typer.echo(f"{len(err.problems)} 个问题, 未发布", err=True)
        raise typer.Exit(1) from None
    except EngineError as err:
        typer.echo(f"错误: {err.detail}", err=True)
        raise typer.Exit(1) from None
    if created:
        typer.echo(f"已发布 {schedule.year} 年节假日安排 ({schedule.notice}): 放假 {len(schedule.holidays)} 天, "
                   f"调休上班 {len(schedule.workdays)} 天; 重算临时期限 {redone} 件")
    else:
        typer.echo(f"{schedule.year} 年节假日安排已发布, 内容相同, 未变化")


@calendar_app.command("show")
def calendar_show(year: Annotated[int | None, typer.Argument(help="年份 (不填: 列出各年来源)")] = None) -> None:
    """查看工作日来源; 指定年份时列出该年的放假日和调休上班日。"""
    from datetime import date, timedelta

    from core import clock
    from engine import workdays
    from storage.db import session_scope

    sources = {"published": "已发布的国务院办公厅通知", "chinese_calendar": "chinese-calendar 数据",
               "provisional": "无官方安排 (按周末临时计算)"}
    with session_scope(_engine(), readonly=True) as session:
        cal = workdays.calendar(session)
    if year is None:
        this = clock.today().year
        for y in sorted({*cal.published, this - 1, this, this + 1}):
            notice = f": {cal.published[y].notice}" if y in cal.published else ""
            typer.echo(f"{y} 年  {sources[cal.source(y)]}{notice}")
        return
    typer.echo(f"{year} 年  {sources[cal.source(year)]}"
               + (f": {cal.published[year].notice}" if year in cal.published else ""))
    day, end = date(year, 1, 1), date(year, 12, 31)
    off, on = [], []
    while day <= end:
        work = cal.is_workday(day)
        if not work and day.weekday() < 5:
            off.append(day)
        elif work and day.weekday() >= 5:
            on.append(day)
        day += timedelta(days=1)
    typer.echo("放假 (工作日休息): " + ("、".join(f"{d:%m-%d}" for d in off) or "无"))
    typer.echo("调休上班 (周末上班): " + ("、".join(f"{d:%m-%d}" for d in on) or "无"))


@exchange_app.command("export")
def exchange_export(
    out: Annotated[Path, typer.Option("--out", help="写入的文件 (已有则覆盖)")],
    after: Annotated[str | None, typer.Option("--after", help="续传游标: 上次导出打印的游标; 不填从头导出")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json 或 csv")] = "json",
) -> None:
    """导出游标之后有变更的全部办件 (含申请人个人信息, 记入导出日志), 并打印下次续传的游标。"""
    import getpass
    import json

    from engine import exchange
    from engine.actors import Actor
    from engine.errors import EngineError
    from storage.db import session_scope

    if fmt not in ("json", "csv"):
        typer.echo("错误: --format 须为 json 或 csv", err=True)
        raise typer.Exit(2)
    actor = Actor(None, f"命令行 ({getpass.getuser()})", None, None, frozenset({exchange.EXPORT_ROLE}))
    try:
        cursor = exchange.parse_cursor(after, "--after")
        # Read-only: a long export holds no writer lock; the log row goes in a short unit of its own.
        with session_scope(_engine(), readonly=True) as session:
            page = exchange.export_all(session, actor, cursor)
            body = {"items": page.items, "next_cursor": str(page.next_cursor)}
            text = exchange.to_csv(page.items) if fmt == "csv" else json.dumps(body, ensure_ascii=False, indent=1)
            partial = out.with_name(out.name + ".partial")
            partial.write_text(text, encoding="utf-8", newline="")
            partial.replace(out)  # a reader of ``out`` never sees half a file
            exchange.record_export(session, actor, page, channel="cli", fmt=fmt, after=cursor)
    except EngineError as err:
        typer.echo(f"错误: {err.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"已导出 {len(page.items)} 件办件到 {out}")
    typer.echo(f"下次续传: --after {page.next_cursor}")
