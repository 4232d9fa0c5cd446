"""The case search index (migrations 0020_case_search, 0032_search_speed), written by the engine in
the intake's transaction:

* ``case_search``: the applicant's name, lower-cased, for substrings of three characters or more
  (SQLite: the FTS5 trigram table ``case_search_fts`` kept in step by triggers; PostgreSQL: the
  pg_trgm GIN index ``ix_case_search_trgm``);
* ``case_search_keys``: B-tree keys for everything else — ``f`` + a field as written (case number,
  name, ID number or credit code, phone digits) for exact and prefix look-ups, ``r`` + the ID
  number and the phone digits reversed for their last digits, ``b`` + each two characters of the
  name (trigrams cannot find a two-character name such as 王芳);
* ``case_search_counters``: the counters taking part in the case (parties are fixed at intake),
  so "cases this clerk may read" is a look-up inside the index query, not a filter after it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class CaseSearch(SQLModel, table=True):
    __tablename__ = "case_search"
    case_id: int = Field(primary_key=True, foreign_key="cases.id")
    name: str = Field(sa_column=sa.Column(sa.Text, nullable=False))


class CaseSearchKey(SQLModel, table=True):
    __tablename__ = "case_search_keys"
    # Byte order on PostgreSQL too (the migration gives the column COLLATE "C"): a prefix is then
    # a plain key range whatever the database's locale.
    key: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    case_id: int = Field(primary_key=True, foreign_key="cases.id")


class CaseSearchCounter(SQLModel, table=True):
    __tablename__ = "case_search_counters"
    case_id: int = Field(primary_key=True, foreign_key="cases.id")
    counter_id: str = Field(primary_key=True, foreign_key="counters.id", max_length=64)


T_SEARCH = CaseSearch.__table__
T_SEARCH_KEYS = CaseSearchKey.__table__
T_SEARCH_COUNTERS = CaseSearchCounter.__table__

# The largest code point: "k" <= key < "k" + TOP is every key that starts with k (byte order).
TOP = "\U0010ffff"


def digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _clean(value: Any) -> str:
    return " ".join(str(value or "").split()).lower()


def index_rows(case_id: int, number: str, applicant: dict[str, Any],
               parties: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A case's rows in the three tables: (case_search row, key rows, counter rows)."""
    name, id_number, phone = _clean(applicant.get("name")), _clean(applicant.get("id_number")), \
        digits(str(applicant.get("phone") or ""))
    keys = {"f" + v for v in (_clean(number), name, id_number, phone) if v}
    keys |= {"r" + v[::-1] for v in (id_number, phone) if v}
    keys |= {"b" + name[i:i + 2] for i in range(len(name) - 1) if " " not in name[i:i + 2]}
    return ({"case_id": case_id, "name": name},
            [{"key": k, "case_id": case_id} for k in sorted(keys)],
            [{"case_id": case_id, "counter_id": c} for c in sorted(set(parties.values()))])
