"""Typed rows (storage.rows): the row TypedDicts mirror their tables, the rows the statements hand
back have exactly those keys and value types, and no signature in engine/flows/api/video falls back
to ``dict[str, Any]`` for a row (or calls a compiled item ``c``). Each scan fails on a planted case.
"""

from __future__ import annotations

import ast
import types
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest
import sqlalchemy as sa
from conftest import Demo, answers_for

from core.settings import ROOT
from engine import deadlines, intake
from engine.advance import load_case
from engine.guards import load_materials
from flows.outbox import claim
from storage.db import session_scope
from storage.rows import (
    CaseRow,
    HistoryRow,
    MaterialRow,
    MaterialRowUpdate,
    NewHistoryEvent,
    NewOutboxJob,
    OutboxJobRow,
    OutboxRow,
)
from storage.tables import T_CASE, T_HIST, T_MAT, T_OUT

# --- the scan ---------------------------------------------------------------------------------

SCANNED = ("engine", "flows", "api", "video")
# Parameters that carry a row (or a list of rows): never annotated with a bare dict[str, Any].
ROW_PARAMS = {"case", "job", "event", "events", "claimed"}
# Functions that return a row (or rows): never declared to return a bare dict[str, Any].
ROW_RETURNS = {"load_case", "advance", "create_case", "set_material", "reassign", "_lock_case",
               "visible_case", "claim", "load_materials", "defer_material"}
# Calls whose result is a compiled item: it is not bound to a local called ``c`` either.
COMPILED_CALLS = {"compiled", "compile_item", "require_holder"}


def _bare_dicts(annotation: ast.expr | None) -> bool:
    """The annotation is, or contains, ``dict[str, Any]`` (quoted annotations included)."""
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return _bare_dicts(ast.parse(annotation.value, mode="eval").body)
    return any(isinstance(n, ast.Subscript) and ast.unparse(n).replace("typing.", "") in
               ("dict[str, Any]", "Dict[str, Any]") for n in ast.walk(annotation))


def _names(annotation: ast.expr | None) -> set[str]:
    if annotation is None:
        return set()
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return _names(ast.parse(annotation.value, mode="eval").body)
    return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(annotation)
            if isinstance(n, ast.Name | ast.Attribute)}


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every row parameter or row-returning function typed ``dict[str, Any]``, and every compiled
    item named ``c`` (a parameter annotated ``CompiledItem``, or a local bound to ``…compiled(…)``)."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]:
                where = f"{filename}:{arg.lineno} {node.name}({arg.arg})"
                if arg.arg in ROW_PARAMS and _bare_dicts(arg.annotation):
                    out.append(f"{where}: a row typed dict[str, Any]")
                if arg.arg == "c" and "CompiledItem" in _names(arg.annotation):
                    out.append(f"{where}: a CompiledItem named c")
            if node.name in ROW_RETURNS and _bare_dicts(node.returns):
                out.append(f"{filename}:{node.lineno} {node.name}: returns a row typed dict[str, Any]")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            call = node.value
            if (any(isinstance(t, ast.Name) and t.id == "c" for t in targets) and isinstance(call, ast.Call)
                    and (_names(call.func) & COMPILED_CALLS)):
                out.append(f"{filename}:{node.lineno}: a compiled item bound to c")
    return out


def scan(root: Path, packages: tuple[str, ...] = SCANNED) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    return found


def test_no_row_is_typed_as_a_bare_dict_and_no_compiled_item_is_called_c() -> None:
    assert scan(ROOT) == []


PLANTED = '''
from typing import Any
from states.compiler import CompiledItem

def holder(c: CompiledItem, case: dict[str, Any]) -> list[str]: ...
async def run(engine: Any, job: "dict[str, Any]") -> dict[str, Any]: ...
def chain(case: object, events: list[dict[str, Any]], *, event: str | dict[str, Any] | None = None) -> None: ...
def load_case(session: Any, number: str) -> dict[str, Any]: ...
def view(session: Any, number: str) -> None:
    c = catalog.compiled(session, 1)
def fine(item: CompiledItem, case: "CaseRow", payload: dict[str, Any], c: int) -> dict[str, Any]:
    c = 3
'''


def test_the_scan_reports_planted_violations(tmp_path: Path) -> None:
    found = violations(PLANTED, "planted.py")
    assert found == [
        "planted.py:5 holder(c): a CompiledItem named c",
        "planted.py:5 holder(case): a row typed dict[str, Any]",
        "planted.py:6 run(job): a row typed dict[str, Any]",
        "planted.py:7 chain(events): a row typed dict[str, Any]",
        "planted.py:7 chain(event): a row typed dict[str, Any]",
        "planted.py:8 load_case: returns a row typed dict[str, Any]",
        "planted.py:10: a compiled item bound to c",
    ], found
    # The same through the files of a tree, as the real scan reads them.
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "planted.py").write_text(PLANTED, encoding="utf-8")
    assert len(scan(tmp_path, ("engine",))) == 7


# --- the row types against the schema ----------------------------------------------------------

def _keys(row_type: Any) -> set[str]:
    return set(row_type.__required_keys__ | row_type.__optional_keys__)


def _columns(table: sa.Table, *, without: tuple[str, ...] = ()) -> dict[str, sa.Column[Any]]:
    return {c.name: c for c in table.columns if c.name not in without}


def _optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); anything else → (itself, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) < len(get_args(annotation)):
            return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return annotation, False


ROW_TYPES = [  # (row type, its columns: name → column)
    (CaseRow, _columns(T_CASE)),
    (HistoryRow, _columns(T_HIST)),
    (NewHistoryEvent, _columns(T_HIST, without=("id",))),
    (MaterialRow, _columns(T_MAT)),
    (MaterialRowUpdate, _columns(T_MAT, without=("case_id",))),
    (OutboxRow, _columns(T_OUT)),
    (OutboxJobRow, _columns(T_OUT) | {"number": T_CASE.c.number, "item_code": T_CASE.c.item_code}),
    (NewOutboxJob, _columns(T_OUT, without=("finished_at", "last_error", "available_at"))),
]


@pytest.mark.parametrize(("row_type", "columns"), ROW_TYPES, ids=[t.__name__ for t, _ in ROW_TYPES])
def test_row_types_mirror_their_tables(row_type: Any, columns: dict[str, sa.Column[Any]]) -> None:
    """Same keys as the table's columns, a value of the column's Python type, ``| None`` exactly
    where the column is nullable (the primary key's ``id`` is never None in a row read back)."""
    assert _keys(row_type) == set(columns)
    hints = get_type_hints(row_type)
    for name, column in columns.items():
        inner, optional = _optional(hints[name])
        assert optional == bool(column.nullable and not column.primary_key), name
        python_type = column.type.python_type
        assert issubclass(get_origin(inner) or inner, python_type), (name, inner, python_type)
        if python_type is date:  # a datetime is a date too: a date column is not typed datetime
            assert inner is date, name


def test_case_row_and_the_new_history_event_leave_out_only_what_their_builders_omit() -> None:
    assert CaseRow.__optional_keys__ == set()
    assert NewHistoryEvent.__optional_keys__ == {"case_id", "trigger", "from_state", "to_state", "comment",
                                                 "prev_hash", "hash"}


# --- the rows the statements hand back --------------------------------------------------------

def _conforms(value: Any, annotation: Any) -> bool:
    if annotation is Any:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_conforms(value, a) for a in get_args(annotation))
    if annotation is type(None):
        return value is None
    if get_origin(annotation) is dict:
        k, v = get_args(annotation)
        return isinstance(value, dict) and all(_conforms(a, k) and _conforms(b, v) for a, b in value.items())
    if annotation is datetime:
        return isinstance(value, datetime) and value.utcoffset() is not None  # UTC, never naive
    if annotation is date:
        return type(value) is date
    if annotation is int:
        return type(value) is int
    return isinstance(value, annotation)


def _check(row: dict[str, Any], row_type: Any, *, keys: set[str] | None = None) -> None:
    assert set(row) == (keys if keys is not None else _keys(row_type))
    hints = get_type_hints(row_type)
    wrong = {k: (v, hints[k]) for k, v in row.items() if not _conforms(v, hints[k])}
    assert not wrong, wrong


CBW = {"application": "received", "premises_proof": "received", "operator_id": "received"}


def test_rows_read_back_are_their_typed_rows(demo: Demo) -> None:
    """On SQLite and PostgreSQL: a case, its materials and history as read, a claimed job."""
    number = demo.create("陈静", "CBWLSXK", CBW, commitment={"signer": "申请人"})["number"]
    demo.fire("陈静", number, "accept")  # 受理: the periods start
    demo.fire("陈静", number, "request_supplement", comment="缺少材料")  # pauses the clock; queues a job
    demo.fire("陈静", number, "supplement_done")  # resumes it: every clock column has a value
    demo.fire("陈静", number, "accept")
    with session_scope(demo.engine) as s:
        deadlines.sweep(s)  # sets deadline_status
    with session_scope(demo.engine) as s:
        case = load_case(s, number)
        _check(dict(case), CaseRow)
        assert None not in (case.get("paused_days"), case.get("deadline_status"), case["commitment"])
        materials = load_materials(s, case["id"])
        assert materials
        for m in materials.values():
            _check(dict(m), MaterialRow)
        events = s.execute(sa.select(T_HIST).where(T_HIST.c.case_id == case["id"])).mappings().all()
        assert {e["kind"] for e in events} >= {"intake", "transition"}
        for e in events:
            _check(dict(e), HistoryRow)
    jobs = claim(demo.engine, None, 10)
    assert jobs and {j["number"] for j in jobs} == {number}
    for j in jobs:
        _check(dict(j), OutboxJobRow)
        assert j["status"] == "running"


def test_the_case_create_case_returns_has_every_key_but_the_clock(demo: Demo) -> None:
    with session_scope(demo.engine) as s:
        case, _ = intake.create_case(s, demo.actor("陈静"), "CBWLSXK", {"name": "类型"}, CBW,
                                     situation=answers_for("CBWLSXK", CBW))
    _check(dict(case), CaseRow, keys=set(CaseRow.__required_keys__))
