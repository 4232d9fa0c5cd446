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
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
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


def main(argv: list[str] | None = None) -> None:
    """``prefect …`` with the patch applied (in this process: ``server start`` runs in it)."""
    patch()
    from prefect.cli import app

    sys.argv = ["prefect", *(sys.argv[1:] if argv is None else argv)]
    app()


if __name__ == "__main__":
    main()
