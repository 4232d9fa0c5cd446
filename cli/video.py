"""``tongban video …``: the TURN server's configuration and a local Janus for the janus backend."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

video_app = typer.Typer(help="视频: TURN 服务配置、本地 Janus 媒体服务", no_args_is_help=True)


@video_app.command("turn-config")
def turn_config(
    realm: Annotated[str, typer.Option(help="TURN 域 (realm)")] = "tongban",
    listening_ip: Annotated[str, typer.Option(help="coturn 监听地址")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="coturn 监听端口")] = 3478,
    external_ip: Annotated[str | None, typer.Option(help="NAT 后的公网地址 (告知客户端的中继地址)")] = None,
    relay_ip: Annotated[str | None, typer.Option(help="分配中继所用的本机地址")] = None,
    allow_peer: Annotated[list[str] | None, typer.Option(
        "--allow-peer", help="允许中继到达的内网地址 (媒体服务器 Janus 的地址; 其余内网地址一律拒绝), 可重复")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="写入文件 (默认打印)")] = None,
) -> None:
    """生成 coturn 配置 (turnserver.conf), 使用与入会链接相同的 TURN REST 共享密钥。"""
    from video.turn import coturn_config

    text = coturn_config(realm=realm, listening_ip=listening_ip, port=port, external_ip=external_ip,
                         relay_ip=relay_ip, allowed_peers=tuple(allow_peer or ()))
    if output is None:
        typer.echo(text, nl=False)
    else:
        # The shared secret is in it: made 0600 from the start (never readable for a moment).
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "w") as f:
            f.write(text)
        typer.echo(f"已写入 {output}; 启动: turnserver -c {output}")


@video_app.command("janus")
def janus(
    folder: Annotated[Path, typer.Option(help="配置与录像目录")] = Path("var/janus"),
    port: Annotated[int, typer.Option(help="Janus HTTP 端口 (仅 127.0.0.1)")] = 8088,
) -> None:
    """按生成的配置启动本地 Janus (TONGBAN_VIDEO_BACKEND=janus 时使用), Ctrl-C 停止。"""
    from video.backends.janus import start_local

    local = start_local(folder, http_port=port)
    typer.echo(f"Janus 已启动: {local.url}  (配置 {folder})")
    try:
        local.process.wait()
    except KeyboardInterrupt:
        local.stop()


def start_for_serve(folder: Path):  # type: ignore[no-untyped-def]
    """``tongban serve --janus``: a local Janus, and the app's processes told to use it."""
    import os

    from video.backends.janus import start_local

    port = int(os.environ.get("TONGBAN_JANUS_PORT", "8088"))
    local = start_local(folder, http_port=port)
    os.environ["TONGBAN_VIDEO_BACKEND"] = "janus"
    os.environ["TONGBAN_JANUS_URL"] = local.url
    typer.echo(f"Janus 已启动: {local.url}  (配置 {folder})")
    return local
