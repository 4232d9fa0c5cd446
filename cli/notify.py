"""``tongban notify``: the notifications that did not go out, and sending them again."""

from __future__ import annotations

from typing import Annotated

import typer

notify_app = typer.Typer(help="通知: 查看发送失败或无可用地址的通知并重新发送", no_args_is_help=True)


def _engine():  # type: ignore[no-untyped-def]
    from storage import migrate
    from storage.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine)  # as every command that writes the database
    return engine


@notify_app.command("failed")
def failed(
    region: Annotated[str | None, typer.Option(help="只看与此地区窗口有关的通知")] = None,
    limit: Annotated[int, typer.Option(min=1, help="至多列出条数")] = 200,
) -> None:
    """列出发送失败或无可用地址的通知 (办件编号、渠道、地址 (部分隐藏)、尝试次数、最近错误)。"""
    from core.clock import local
    from engine.notify_failed import failed as listing
    from storage.db import session_scope

    with session_scope(_engine(), readonly=True) as session:
        rows = listing(session, {region} if region else None, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    for r in rows:
        at = r["last_attempt_at"] or r["created_at"]
        typer.echo(f"{r['id']}  {r['case_number'] or '-'}  {r['kind_label']}  {r['status_label']}  "
                   f"{r['channel_label']} {r['address'] or '-'}  {r['attempts']} 次  "
                   f"{local(at).isoformat(timespec='seconds')}\n    {(r['last_error'] or '')[:300]}")
    if more:
        typer.echo(f"仅列出最早的 {len(rows)} 条未发出的通知 (可用 --limit 列出更多)")
    else:
        typer.echo(f"共 {len(rows)} 条未发出的通知")


@notify_app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="通知编号 (tongban notify failed 列出)")] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="全部未发出的通知 (可与 --region 合用)")] = False,
    region: Annotated[str | None, typer.Option(help="只重发与此地区窗口有关的通知")] = None,
) -> None:
    """把未发出的通知重新排入待发 (次数清零, 重新确定地址), 由下一轮发送处理。"""
    from engine import notify_failed
    from engine.errors import EngineError
    from storage.db import session_scope

    if not ids and not all_failed:
        typer.echo("错误: 请给出通知编号, 或用 --all", err=True)
        raise typer.Exit(2)
    done: list[int] = []
    problems: list[str] = []
    with session_scope(_engine()) as session:
        if all_failed and not ids:
            done = notify_failed.retry_all(session, {region} if region else None)
        for nid in ids or []:
            try:
                with session.begin_nested():  # one refusal does not undo the others
                    notify_failed.retry(session, nid)
                done.append(nid)
            except EngineError as err:
                problems.append(f"通知 {nid}: {err.detail}")
    for line in problems:
        typer.echo(line, err=True)
    typer.echo(f"已重新排入 {len(done)} 条通知")
    if problems:
        raise typer.Exit(1)
