"""Document numbers (文号): per member unit, per kind's word and per calendar year, gap-free.

A number is the unit's scheme (alliance directory, e.g. ``{abbr}{word}〔{year}〕{seq:05d}号``)
filled with a sequence kept in the ``sequences`` table. The sequence is bumped by a single
upsert in the transaction that issues the document: its row stays locked until that transaction
ends, so concurrent issuers at one unit queue behind each other and each reads the value the
previous one committed (monotonic, no duplicates), and a rolled-back transition releases its
increment along with everything else (no gaps). Kinds that share a word share the sequence, so
two kinds can never print the same number.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from engine.errors import InvalidInput, NotFound
from storage.db import bound_engine
from storage.prepared import Prepared
from storage.tables import Sequence, Unit


class Scheme(Protocol):
    """What numbering reads of a unit: a ``Unit`` row, or the issuer a notice has read already."""

    id: str
    name: str
    doc_abbr: str
    doc_format: str
    doc_words: dict[str, str]


def sequence_name(unit_id: str, word: str, year: int) -> str:
    return f"doc:{unit_id}:{word}:{year}"


T_SEQ = Sequence.__table__
_ONE_MORE = {"value": T_SEQ.c.value + sa.literal_column("1")}  # inline: a prepared INSERT binds columns only
# Every notice a step issues bumps one (storage.prepared: the ORM's execute cost more than the upsert).
_BUMP = {
    "postgresql": Prepared(postgresql.insert(T_SEQ).on_conflict_do_update(
        index_elements=[T_SEQ.c.name], set_=_ONE_MORE).returning(T_SEQ.c.value)),
    "sqlite": Prepared(sqlite.insert(T_SEQ).on_conflict_do_update(
        index_elements=[T_SEQ.c.name], set_=_ONE_MORE).returning(T_SEQ.c.value)),
}


def _bump(session: Session, name: str) -> int:
    """Add one to the named sequence (creating it at 1) and return the new value, atomically."""
    row = _BUMP[bound_engine(session).dialect.name].first(session, {"name": name, "value": 1})
    assert row is not None  # an upsert with RETURNING answers one row
    return int(row["value"])


def format_number(unit: Scheme, word: str, year: int, seq: int) -> str:
    return unit.doc_format.format(abbr=unit.doc_abbr, word=word, year=year, seq=seq)


def word_of(unit: Scheme, kind: str, decision: str | None = None) -> str | None:
    """The scheme's word for a kind of notice. A decision notice may have one per what the item
    decides (``approval.registration: 准登``: a 准予登记通知书 must not read 准许), else the kind's."""
    return (decision and unit.doc_words.get(f"{kind}.{decision}")) or unit.doc_words.get(kind)


def allocate(session: Session, unit_id: str, kind: str, year: int) -> str:
    """The next number of this unit for this kind of document in this year (China calendar year).

    Call it inside the transaction that records the document; it consumes a number only if that
    transaction commits.
    """
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"成员单位 {unit_id} 不存在")
    return next_number(session, unit, kind, year)


def next_number(session: Session, unit: Scheme, kind: str, year: int, decision: str | None = None) -> str:
    """``allocate`` for a caller that has read the unit's scheme already (in this transaction);
    ``decision``: what the item decides (``ItemDefinition.decision``), for a decision notice's word."""
    word = word_of(unit, kind, decision)
    if not word:
        raise InvalidInput("kind", f"成员单位「{unit.name}」的文号方案未定义「{kind}」类文书的字号")
    return format_number(unit, word, year, _bump(session, sequence_name(unit.id, word, year)))


def peek(session: Session, unit_id: str, kind: str, year: int) -> int:
    """The last sequence value committed (0 when none yet): for the directory's overview."""
    unit = session.get(Unit, unit_id)
    word = unit.doc_words.get(kind) if unit else None
    if not word:
        return 0
    row = session.get(Sequence, sequence_name(unit_id, word, year))
    return row.value if row else 0
