"""Named counters (the ``sequences`` table): case numbers per region and day, 文号 per unit, word
and year. A bump is one upsert in the caller's transaction: the row stays locked until that
transaction ends, so concurrent callers queue behind each other and each reads the value the
previous one committed (no duplicates), a rolled-back caller releases its increment (no gaps),
and two callers bumping a name nobody has used yet never collide on inserting it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.db import bound_engine
from storage.prepared import Prepared
from storage.tables import Sequence

T_SEQ = Sequence.__table__
_ONE_MORE = {"value": T_SEQ.c.value + sa.literal_column("1")}  # inline: a prepared INSERT binds columns only
# Every transition that issues a notice bumps one (storage.prepared: the ORM's execute cost more).
_BUMP = {
    "postgresql": Prepared(postgresql.insert(T_SEQ).on_conflict_do_update(
        index_elements=[T_SEQ.c.name], set_=_ONE_MORE).returning(T_SEQ.c.value)),
    "sqlite": Prepared(sqlite.insert(T_SEQ).on_conflict_do_update(
        index_elements=[T_SEQ.c.name], set_=_ONE_MORE).returning(T_SEQ.c.value)),
}


def bump(session: Session, name: str) -> int:
    """Add one to the named sequence (creating it at 1) and return the new value, atomically."""
    row = _BUMP[bound_engine(session).dialect.name].first(session, {"name": name, "value": 1})
    assert row is not None  # an upsert with RETURNING answers one row
    return int(row["value"])
