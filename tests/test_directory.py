"""The managed alliance directory: file:line checks, versioned imports, one set of clerks on any
number of nodes (concurrent imports on PostgreSQL), an appended region with no file edited by hand."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from engine import actors
from engine.catalog import read_file
from engine.demo import seed
from engine.directory import resolve_parties
from engine.directory_manage import (
    DirectoryError,
    check_file,
    check_text,
    diff,
    directory_clerk,
    import_directory,
    latest,
    versions,
)
from engine.errors import Unauthenticated
from storage.dashboard_tables import T_SUP
from storage.db import session_scope
from storage.directory_tables import CounterKind, DirectoryVersion
from storage.tables import Clerk, CounterItem, Region
from tests.conftest import ALLIANCE, CATALOG, Demo


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


def test_a_directory_that_drops_a_counter_and_a_clerk_retires_them(sqlite_demo: Demo, tmp_path: Path) -> None:
    """A counter the new version no longer lists gets no case; a clerk it no longer lists cannot sign in."""
    demo = sqlite_demo
    token = demo.tokens["周敏"]
    text = ALLIANCE.read_text(encoding="utf-8").replace(
        "  - {name: 周敏, counter: pd-jiaoyu, roles: [approver]}\n", "", 1).replace(
        "  - id: pd-jiaoyu\n", "  - id: pd-jiaoyu-2\n", 1)  # the 教育局 window moved: a new id, same items
    changed = tmp_path / "alliance.yaml"
    changed.write_text(text, encoding="utf-8")
    checked = check_file(changed)
    with session_scope(demo.engine) as s:
        lines = diff(latest(s).document, checked.document)
        result = import_directory(s, checked, "运维")
    assert "- 窗口 pd-jiaoyu 事项 MBXXZZHB: education" in lines and "- 工作人员 周敏@pd-jiaoyu: approver" in lines
    assert result.changed and not result.tokens
    with session_scope(demo.engine) as s:
        assert not s.execute(sa.select(CounterItem).where(CounterItem.counter_id == "pd-jiaoyu")).first()
        clerk = directory_clerk(s, "周敏", "pd-jiaoyu")
        assert clerk is not None and clerk.active is False
        clerk_id = clerk.id
        item = read_file(CATALOG / "mbxx_banxue_zhizhao.yaml").definition
        parties = resolve_parties(s, item, "jn-kuayu", "310115")
    assert parties.by_role["education"] == "pd-jiaoyu-2"  # pd-jiaoyu sorted first and was picked before
    with pytest.raises(Unauthenticated):
        actors.authenticate(demo.engine, token)
    assert demo.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    with session_scope(demo.engine) as s:  # listed again: the same clerk, active, with a fresh token
        back = import_directory(s, check_file(ALLIANCE), "运维")
    assert [t["name"] for t in back.tokens] == ["周敏"]
    assert actors.authenticate(demo.engine, back.tokens[0]["token"]).id == clerk_id


def test_the_demo_seed_never_replaces_a_real_directory(sqlite_demo: Demo, tmp_path: Path) -> None:
    """A node started with the default --demo after an operator's import changes nothing."""
    demo = sqlite_demo
    text = ALLIANCE.read_text(encoding="utf-8").replace(
        "  - {name: 周敏, counter: pd-jiaoyu, roles: [approver]}\n", "", 1)
    real = tmp_path / "alliance.yaml"
    real.write_text(text, encoding="utf-8")
    with session_scope(demo.engine) as s:
        mine = import_directory(s, check_file(real), "运维")
    with session_scope(demo.engine) as s:
        assert seed(s, CATALOG, ALLIANCE, tmp_path / "node2" / "tokens.json", 30) == []
    with Session(demo.engine) as s:
        current = latest(s)
        assert (current.version, current.content_hash) == (mine.version, mine.content_hash)
        assert directory_clerk(s, "周敏", "pd-jiaoyu").active is False  # removed stays removed
    assert not (tmp_path / "node2" / "tokens.json").exists()


def test_a_supervisors_regions_are_what_the_directory_lists_now(sqlite_demo: Demo, tmp_path: Path) -> None:
    """A region taken from a supervisor in a new version stops showing its cases; the role taken
    away leaves no region behind."""
    demo = sqlite_demo
    narrowed = tmp_path / "alliance.yaml"
    narrowed.write_text(ALLIANCE.read_text(encoding="utf-8").replace(
        'roles: [supervisor], regions: ["370100", "370211", "310115"]', 'roles: [supervisor], regions: ["370211"]', 1),
        encoding="utf-8")
    with session_scope(demo.engine) as s:
        import_directory(s, check_file(narrowed), "运维")
    with session_scope(demo.engine) as s:
        zhao = directory_clerk(s, "赵督查", None)
        assert zhao is not None
        assert set(s.execute(sa.select(T_SUP.c.region_code).where(T_SUP.c.clerk_id == zhao.id)).scalars()) == {"370211"}
    demoted = tmp_path / "demoted.yaml"
    demoted.write_text(narrowed.read_text(encoding="utf-8").replace(
        '{name: 赵督查, counter: null, roles: [supervisor], regions: ["370211"]}',
        '{name: 赵督查, counter: null, roles: [directory_admin]}', 1), encoding="utf-8")
    with session_scope(demo.engine) as s:
        import_directory(s, check_file(demoted), "运维")
    with session_scope(demo.engine) as s:
        assert not s.execute(sa.select(T_SUP.c.region_code).where(T_SUP.c.clerk_id == zhao.id)).first()
