"""Run Prefect's own server (API, UI, scheduler and the other services) under SQLAlchemy 2.1.

Prefect 3.8.8's scheduler inserts flow runs with one ORM bulk INSERT whose rows carry a ``state``
key beside the columns; Prefect inserts the state rows itself right after. ``FlowRun.state`` (and
``TaskRun.state``) is a ``hybrid_property``. SQLAlchemy 2.0 left such keys out of a bulk INSERT;
2.1 added ``hybrid_property.bulk_dml`` and now calls it for every hybrid key of a bulk row, raising
"Can't evaluate bulk DML statement; please supply a bulk_dml decorated function" when a hybrid has
none. So every scheduling loop fails and no scheduled run is ever created. storage.prepared needs
2.1, and Prefect 3.9 needs a certifi the index lacks, so neither side can move.

``patch()`` gives each hybrid of Prefect's ORM models that has no bulk hook one that drops its key
from the (copied) bulk row: exactly what 2.0 did. It changes nothing else, and becomes a no-op
once Prefect declares its own hooks. ``main()`` is ``prefect`` with the patch applied: use
``tongban prefect server start …`` (or ``python -m flows.prefect_server server start …``) where
``prefect server start …`` would be used.

``server start`` also takes ``--ssl-certfile PEM --ssl-keyfile PEM`` (uvicorn's names): the server
then speaks only https. ``prefect server start`` 3.8.8 has no TLS option, but it runs Prefect's ASGI
app under ``uvicorn.run`` in this process, and uvicorn terminates TLS itself; ``serve_tls`` hands it
the certificate. That, rather than a proxy in front, is what we deploy: no second component to run
and configure, no plain-text port listening even on loopback, and Prefect's websockets (events,
logs) need no upgrade rules. A load balancer that terminates TLS works too
(docs/operations-security.md). Clients check the certificate with ``PREFECT_API_SSL_CERT_FILE``.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

from sqlalchemy.ext.hybrid import hybrid_property

_patched: list[str] = []


def _drop_key(key: str) -> Any:
    def drop(cls: type, mapping: MutableMapping[str, Any], value: Any) -> None:
        mapping.pop(key, None)  # SQLAlchemy hands over its own copy of the caller's row
    return drop


def patch() -> list[str]:
    """Give Prefect's ORM hybrids without a bulk hook one that ignores them; returns what it patched."""
    if _patched:
        return list(_patched)
    from prefect.server.database import orm_models

    for mapper in orm_models.Base.registry.mappers:
        for klass in mapper.class_.__mro__:
            for key, attr in list(vars(klass).items()):
                if isinstance(attr, hybrid_property) and getattr(attr, "bulk_dml_setter", 0) is None:
                    attr.inplace.bulk_dml(_drop_key(key))
                    _patched.append(f"{klass.__name__}.{key}")
    return list(_patched)


TLS_OPTIONS = ("--ssl-certfile", "--ssl-keyfile")


def take_tls_options(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``server start``'s arguments without ``--ssl-certfile``/``--ssl-keyfile`` (``--opt value`` or
    ``--opt=value``), and those two as uvicorn keywords (``ssl_certfile``, ``ssl_keyfile``)."""
    rest: list[str] = []
    tls: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        name, eq, value = arg.partition("=")
        if name not in TLS_OPTIONS:
            rest.append(arg)
            continue
        if not eq:
            value = next(it, "")
        if not value:
            raise SystemExit(f"{name}: 缺少文件路径")
        tls[name.removeprefix("--").replace("-", "_")] = value
    if tls and set(tls) != {"ssl_certfile", "ssl_keyfile"}:
        raise SystemExit("--ssl-certfile 与 --ssl-keyfile 须同时给出")
    return rest, tls


def serve_tls(ssl_certfile: str, ssl_keyfile: str) -> None:
    """Have every ``uvicorn.run`` of this process (``prefect server start`` in the foreground, one
    worker or several) serve https with this certificate and key. Both are loaded here first, so a
    wrong path or a key that does not match stops the start with the reason."""
    import uvicorn

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(ssl_certfile, ssl_keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise SystemExit(f"TLS 证书或私钥不可用 ({ssl_certfile}, {ssl_keyfile}): {exc}") from exc
    run: Callable[..., Any] = uvicorn.run

    def run_tls(*args: Any, **kwargs: Any) -> Any:
        return run(*args, **kwargs, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)

    uvicorn.run = run_tls


def main(argv: list[str] | None = None) -> None:
    """``prefect …`` with the patch applied (in this process: ``server start`` runs in it)."""
    patch()
    from prefect.cli import app

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["server", "start"]:
        args, tls = take_tls_options(args)
        if tls:
            if {"--background", "-b"} & set(args):  # a uvicorn subprocess: neither TLS nor the patch
                raise SystemExit("--background 不支持 TLS (也不带兼容修正): 请在前台运行")
            serve_tls(**tls)
    sys.argv = ["prefect", *args]
    app()


if __name__ == "__main__":
    main()
