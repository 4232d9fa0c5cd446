"""TURN for counters behind NAT: coturn's configuration and short-lived TURN REST credentials.

The TURN REST convention (coturn ``use-auth-secret``): the username is ``<expiry unix time>:<who>``
and the password is base64(HMAC-SHA1(shared secret, username)). coturn checks both with the same
shared secret and refuses the credential once the expiry has passed, so a join link carries a
credential that works only for its lifetime and needs no account on the TURN server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from core.install_secrets import install_secret
from core.settings import get_settings


@dataclass(frozen=True)
class TurnCredential:
    urls: tuple[str, ...]
    username: str
    credential: str
    expires_at: int

    def ice_server(self) -> dict[str, object]:
        """The ``RTCIceServer`` a browser (or aiortc) is given."""
        return {"urls": list(self.urls), "username": self.username, "credential": self.credential}


def secret() -> bytes:
    return install_secret("turn-secret", get_settings().turn_secret)


def password(username: str, key: bytes | None = None) -> str:
    return base64.b64encode(hmac.new(key or secret(), username.encode(), hashlib.sha1).digest()).decode()


def credential(who: str, *, urls: tuple[str, ...] | None = None, ttl: int | None = None,
               at: float | None = None, key: bytes | None = None) -> TurnCredential | None:
    """A credential for ``who`` (a room and role, never a personal name); None without TURN URLs."""
    s = get_settings()
    urls = urls if urls is not None else tuple(u.strip() for u in s.turn_urls.split(",") if u.strip())
    if not urls:
        return None
    expires = int(at if at is not None else time.time()) + (ttl if ttl is not None else s.turn_ttl_seconds)
    user = f"{expires}:{who.replace(':', '_')}"
    return TurnCredential(urls, user, password(user, key), expires)


def coturn_config(*, realm: str, listening_ip: str = "0.0.0.0", port: int = 3478,
                  relay_ip: str | None = None, external_ip: str | None = None,
                  min_port: int = 49152, max_port: int = 65535, key: bytes | None = None,
                  allow_loopback: bool = False, allowed_peers: tuple[str, ...] = ()) -> str:
    """A ``turnserver.conf`` for coturn, using the product's shared secret (TURN REST).

    Relays may not reach private networks (the service hall's own), except ``allowed_peers``:
    the media server's address (Janus, often on a private address beside coturn) must be let
    through, or a relay-only page could not reach it. ``relay_ip``: the address relays are
    allocated on; ``external_ip``: the public address behind NAT that clients are told."""
    lines = [
        "# 通办 Tongban: coturn 配置 (tongban video turn-config 生成)",
        "# 凭据为 TURN REST 临时凭据: 用户名 <到期时间>:<会议室>, 密码 HMAC-SHA1(共享密钥, 用户名)",
        f"listening-ip={listening_ip}",
        f"listening-port={port}",
        f"realm={realm}",
        "use-auth-secret",
        f"static-auth-secret={(key or secret()).decode()}",
        "fingerprint",
        "no-cli",
        "no-tls",
        "no-dtls",
        "no-multicast-peers",
        "stale-nonce=600",
        f"min-port={min_port}",
        f"max-port={max_port}",
        "log-file=stdout",
        "simple-log",
    ]
    if relay_ip:
        lines.append(f"relay-ip={relay_ip}")
    if external_ip:
        lines.append(f"external-ip={external_ip}")
    if allow_loopback:
        lines.append("allow-loopback-peers")
        lines.append("cli-password=unused")
    else:
        # Relays must not reach the service hall's own network.
        lines += ["denied-peer-ip=10.0.0.0-10.255.255.255", "denied-peer-ip=172.16.0.0-172.31.255.255",
                  "denied-peer-ip=192.168.0.0-192.168.255.255"]
    # coturn lets an allowed address through a denied range (the media server, e.g. Janus).
    lines += [f"allowed-peer-ip={ip}" for ip in allowed_peers]
    return "\n".join(lines) + "\n"
