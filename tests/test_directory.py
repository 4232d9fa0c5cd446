"""The managed alliance directory: file:line checks, versioned imports, one set of clerks on any
number of nodes (concurrent imports on PostgreSQL), an appended region with no file edited by hand."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from engine import actors
from engine.demo import seed
from engine.directory_manage import DirectoryError, check_file, check_text, diff, import_directory, versions
from storage.db import session_scope
from storage.directory_tables import CounterKind, DirectoryVersion
from storage.tables import Clerk, CounterItem, Region
from tests.conftest import ALLIANCE, CATALOG


def test_check_names_file_line_and_reason() -> None:
    text = ('regions:\n  - {code: "37010", name: 济南}\ncounters:\n'
            '  - {id: a, name: 窗口, region: "999999", kind: robot}\n'
            'clerks:\n  - {name: 张三, counter: nope, roles: [god]}\n')
    with pytest.raises(DirectoryError) as err:
        check_text(text, "d.yaml")
    got = [p.format() for p in err.value.problems]
    assert got[0].startswith("d.yaml:2:") and "6 位数字" in got[0]
    assert any(g.startswith("d.yaml:4:") and "robot" in g for g in got)
    assert any(g.startswith("d.yaml:6:") and "god" in g for g in got)
    assert any(g.startswith("d.yaml:6:") and "nope" in g for g in got)
    assert check_file(ALLIANCE).document["regions"]  # today's alliance.yaml stays loadable


def test_two_nodes_seeding_at_once_yield_one_set_of_clerks(db: sa.Engine, tmp_path: Path) -> None:
    barrier, out, errors = threading.Barrier(2), {}, []

    def node(n: int) -> None:
        try:
            barrier.wait(10)
            with session_scope(db) as s:
                out[n] = seed(s, CATALOG, ALLIANCE, tmp_path / f"node{n}" / "tokens.json", 30)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=node, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with Session(db) as s:
        wanted = len(check_file(ALLIANCE).document["clerks"])
        assert s.execute(sa.select(sa.func.count()).select_from(Clerk)).scalar_one() == wanted
        assert s.execute(sa.select(sa.func.count()).select_from(DirectoryVersion)).scalar_one() == 1
        # Each node holds working tokens for the same clerks.
        ids = [{actors.authenticate(db, t["token"]).id for t in out[n]} for n in (1, 2)]
    assert ids[0] == ids[1] and len(ids[0]) == wanted
    with session_scope(db) as s:  # a third run (a restart) changes nothing
        again = seed(s, CATALOG, ALLIANCE, tmp_path / "node1" / "tokens.json", 30)
    assert again == out[1]


def test_a_changed_directory_adds_a_region_and_replaces_a_counter_list(sqlite_db: sa.Engine, tmp_path: Path) -> None:
    with session_scope(sqlite_db) as s:
        first = import_directory(s, check_file(ALLIANCE), "test")
    text = ALLIANCE.read_text(encoding="utf-8").replace(
        "regions:\n", 'regions:\n  - {code: "320500", name: 江苏省苏州市}\n', 1).replace(
        "counters:\n", "counters:\n  - {id: sz-zhengwu, name: 苏州市政务服务中心自助区, region: \"320500\", "
        "kind: self_service, items: {GGCSWSXK: [intake]}}\n", 1).replace(
        "      MBXXZZHB: [intake]\n", "", 1)  # jn-kuayu's, the first counter to list it
    changed = tmp_path / "alliance.yaml"
    changed.write_text(text, encoding="utf-8")
    checked = check_file(changed)
    lines = diff(first and versions_doc(sqlite_db, 1), checked.document)
    assert "+ 地区 320500: 江苏省苏州市" in lines
    assert "- 窗口 jn-kuayu 事项 MBXXZZHB: intake" in lines
    with session_scope(sqlite_db) as s:
        second = import_directory(s, checked, "test")
        assert second.changed and second.version == 2 and not second.tokens
        assert s.get(Region, "320500") is not None
        assert s.get(CounterKind, "sz-zhengwu").kind == "self_service"
        assert s.get(CounterItem, ("jn-kuayu", "MBXXZZHB", "intake")) is None
        assert [v.version for v in versions(s)] == [1, 2]
        assert not import_directory(s, checked, "test").changed  # unchanged: no third version


def versions_doc(engine: sa.Engine, number: int) -> dict:
    with Session(engine) as s:
        return dict(s.get(DirectoryVersion, number).document)
