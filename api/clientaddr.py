"""Who the client is: the one place the app resolves a request's address and scheme.

Forwarded headers (``Forwarded``, ``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed only
when the connection comes from a proxy in ``TONGBAN_TRUSTED_PROXIES`` (default: none, and then
the peer is the client whatever the headers say). A client can write any of these headers
itself; before this, uvicorn's default trust of 127.0.0.1 let one client rotate
``X-Forwarded-For`` past every per-client budget. ``tongban serve`` therefore turns uvicorn's
own proxy handling off: this middleware is the only one, outermost, so ``request.client`` and
``request.url.scheme`` are resolved for every route, limiter and log after it.

A chain is read from the right (each proxy appends the address it received from): trusted hops
are skipped and the first untrusted one is the client. A hop that is no IP address (``unknown``,
an obfuscated ``_name``) stops the walk at the proxy that wrote it. ``Forwarded`` (RFC 7239) is
preferred when a trusted proxy sends it: a proxy that writes it may pass a client's own
``X-Forwarded-For`` through untouched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from core.settings import get_settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self.networks)


@lru_cache(maxsize=64)
def _parse_ip(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return ip


def parse_node(value: str) -> tuple[Address, int] | None:
    """An address with an optional port: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``."""
    value = value.strip().strip('"').strip()
    if len(value) > 64:
        return None
    port = 0
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        elif rest:
            return None
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        if not p.isdigit():
            return None
        port = int(p)
    else:
        host = value
    ip = _parse_ip(host)
    return None if ip is None else (ip, port if port < 65536 else 0)


def _forwarded_elements(values: list[str]) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded``: comma-separated elements of ``;``-separated ``name=value`` pairs
    (values may be quoted strings, which may contain commas and semicolons)."""
    elements: list[dict[str, str]] = []
    for text in values:
        current: dict[str, str] = {}
        i, n = 0, len(text)
        while i < n:
            while i < n and text[i] in " \t;":
                i += 1
            if i < n and text[i] == ",":
                elements.append(current)
                current, i = {}, i + 1
                continue
            eq = text.find("=", i)
            if eq < 0:
                break
            name = text[i:eq].strip().lower()
            i = eq + 1
            if i < n and text[i] == '"':
                j, buf = i + 1, []
                while j < n and text[j] != '"':
                    if text[j] == "\\" and j + 1 < n:
                        j += 1
                    buf.append(text[j])
                    j += 1
                value, i = "".join(buf), j + 1
            else:
                j = i
                while j < n and text[j] not in ";,":
                    j += 1
                value, i = text[i:j].strip(), j
            current[name] = value
        elements.append(current)
    return elements


def _walk(hops: list[tuple[Address, int] | None], trusted: TrustedProxies) -> int | None:
    """Index of the client in a chain of hops (None: keep the peer)."""
    chosen = None
    for i in range(len(hops) - 1, -1, -1):
        hop = hops[i]
        if hop is None:
            return chosen  # an unusable hop: the proxy to its right is as far as we can see
        chosen = i
        if hop[0] not in trusted:
            return i
    return chosen  # every hop is a trusted proxy: the leftmost asked itself


def resolve(peer: str | None, headers: Iterable[tuple[bytes, bytes]],
            trusted: TrustedProxies) -> tuple[tuple[str, int] | None, str | None]:
    """The client (host, port) and scheme a trusted peer's forwarded headers name; (None, None)
    when the peer is not trusted or names nobody usable."""
    if not trusted or peer is None or _parse_ip(peer) not in trusted:
        return None, None
    forwarded, xff, xfp = [], [], []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.append(value.decode("latin-1"))
        elif name == b"x-forwarded-for":
            xff.append(value.decode("latin-1"))
        elif name == b"x-forwarded-proto":
            xfp.append(value.decode("latin-1"))
    if forwarded:
        elements = [e for e in _forwarded_elements(forwarded) if e]
        hops = [parse_node(e["for"]) if "for" in e else None for e in elements]
        i = _walk(hops, trusted)
        if i is None:
            return None, None
        hop = hops[i]
        assert hop is not None
        proto = elements[i].get("proto", "").lower() or None
        return (str(hop[0]), hop[1]), proto
    if not xff:
        return None, _proto(xfp, None, 0)
    entries = [e for e in ",".join(xff).split(",") if e.strip()]
    hops = [parse_node(e) for e in entries]
    i = _walk(hops, trusted)
    if i is None:
        return None, None
    hop = hops[i]
    assert hop is not None
    return (str(hop[0]), hop[1]), _proto(xfp, i, len(hops))


def _proto(xfp: list[str], index: int | None, hops: int) -> str | None:
    values = [v.strip().lower() for v in ",".join(xfp).split(",") if v.strip()]
    if not values:
        return None
    # One value per hop: the one the chosen client used; else the nearest proxy's.
    return values[index] if index is not None and len(values) == hops else values[-1]


class ClientAddress:
    """Pure ASGI middleware: rewrites ``scope["client"]`` and ``scope["scheme"]`` from a trusted
    proxy's headers. Must be the outermost middleware of the app."""

    def __init__(self, app: ASGIApp, trusted: Iterable[str] | None = None) -> None:
        self.app = app
        self.trusted = TrustedProxies(get_settings().trusted_proxies if trusted is None else trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            client, proto = resolve(peer[0] if peer else None, scope["headers"], self.trusted)
            if client is not None or proto is not None:
                scope = dict(scope)
                scope["tongban.peer"] = peer
                if client is not None:
                    scope["client"] = client
                if proto in ("http", "https"):
                    scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        await self.app(scope, receive, send)


def client_address(request: Request) -> str:
    """The client's address as the app knows it (after ``ClientAddress``); "unknown" for a
    transport without one (a Unix socket)."""
    return request.client.host if request.client else "unknown"
