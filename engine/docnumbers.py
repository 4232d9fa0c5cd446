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

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from engine.errors import InvalidInput, NotFound
from storage.tables import Sequence, Unit


def sequence_name(unit_id: str, word: str, year: int) -> str:
    return f"doc:{unit_id}:{word}:{year}"


def _bump(session: Session, name: str) -> int:
    """Add one to the named sequence (creating it at 1) and return the new value, atomically."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: sa.Insert = postgresql.insert(Sequence).values(name=name, value=1).on_conflict_do_update(
            index_elements=[Sequence.name], set_={"value": Sequence.value + 1})
    elif dialect == "sqlite":
        stmt = sqlite.insert(Sequence).values(name=name, value=1).on_conflict_do_update(
            index_elements=[Sequence.name], set_={"value": Sequence.value + 1})
    else:  # pragma: no cover - the product runs on these two
        raise NotImplementedError(dialect)
    return int(session.execute(stmt.returning(Sequence.value)).scalar_one())


def format_number(unit: Unit, kind: str, year: int, seq: int) -> str:
    return unit.doc_format.format(abbr=unit.doc_abbr, word=unit.doc_words[kind], year=year, seq=seq)


def allocate(session: Session, unit_id: str, kind: str, year: int) -> str:
    """The next number of this unit for this kind of document in this year (China calendar year).

    Call it inside the transaction that records the document; it consumes a number only if that
    transaction commits.
    """
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"成员单位 {unit_id} 不存在")
    word = unit.doc_words.get(kind)
    if not word:
        raise InvalidInput("kind", f"成员单位「{unit.name}」的文号方案未定义「{kind}」类文书的字号")
    return format_number(unit, kind, year, _bump(session, sequence_name(unit_id, word, year)))


def peek(session: Session, unit_id: str, kind: str, year: int) -> int:
    """The last sequence value committed (0 when none yet): for the directory's overview."""
    unit = session.get(Unit, unit_id)
    word = unit.doc_words.get(kind) if unit else None
    if not word:
        return 0
    row = session.get(Sequence, sequence_name(unit_id, word, year))
    return row.value if row else 0
