"""Member units in the alliance directory and their document numbers (文号): gap-free under concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import directory, docnumbers
from storage.db import session_scope
from storage.tables import Counter, Sequence, Unit
from tests.conftest import ALLIANCE


@pytest.fixture
def units(db: sa.Engine) -> sa.Engine:
    with session_scope(db) as s:
        directory.load_alliance(s, ALLIANCE)
    return db


def test_counters_reference_their_units(units: sa.Engine) -> None:
    with session_scope(units) as s:
        qd = s.get(Counter, "qd-xihai")
        assert qd is not None and qd.unit_id == "qdxh-shenpi"
        assert qd.unit == "青岛西海岸新区行政审批服务局"  # the name the readers of Counter.unit show
        u = directory.unit_of_counter(s, "qd-xihai")
        assert u is not None and u.code == "11370211MB1936126L" and u.region_code == "370211"
        assert u.doc_words["acceptance"] == "受" and u.doc_words["supplement"] == "补"
        assert {c.unit_id for c in s.execute(sa.select(Counter)).scalars()} == {x.id for x in directory.units(s)}


def test_a_directory_without_units_still_loads(db: sa.Engine, tmp_path: Path) -> None:
    f = tmp_path / "alliance.yaml"
    f.write_text('regions: [{code: "370100", name: 济南}]\n'
                 'counters: [{id: c1, name: 窗口, unit: 某局, region: "370100"}]\n', encoding="utf-8")
    with session_scope(db) as s:
        directory.load_alliance(s, f)
    with session_scope(db) as s:
        c = s.get(Counter, "c1")
        assert c is not None and c.unit == "某局" and c.unit_id is None
        assert directory.unit_of_counter(s, "c1") is None


def test_a_unit_with_a_wrong_credit_code_is_refused(db: sa.Engine, tmp_path: Path) -> None:
    from engine.errors import InvalidInput
    f = tmp_path / "alliance.yaml"
    f.write_text('regions: [{code: "370100", name: 济南}]\n'
                 'units: [{id: u1, name: 某局, code: "11370100MB2840126J", region: "370100", abbr: 某}]\n',
                 encoding="utf-8")
    with pytest.raises(InvalidInput) as e, session_scope(db) as s:
        directory.load_alliance(s, f)
    assert e.value.extra["errors"][0]["field"] == "units[0].code" and "第 18 位应为 H" in e.value.detail


def test_numbers_follow_the_units_scheme_per_word_and_year(units: sa.Engine) -> None:
    with session_scope(units) as s:
        assert docnumbers.allocate(s, "qdxh-shenpi", "acceptance", 2026) == "青西审受〔2026〕00001号"
        assert docnumbers.allocate(s, "qdxh-shenpi", "acceptance", 2026) == "青西审受〔2026〕00002号"
        assert docnumbers.allocate(s, "qdxh-shenpi", "supplement", 2026) == "青西审补〔2026〕00001号"
        assert docnumbers.allocate(s, "qdxh-shenpi", "acceptance", 2027) == "青西审受〔2027〕00001号"
        assert docnumbers.allocate(s, "jn-shenpi", "acceptance", 2026) == "济审受〔2026〕00001号"
    with session_scope(units) as s:
        assert docnumbers.peek(s, "qdxh-shenpi", "acceptance", 2026) == 2


def test_a_rolled_back_transaction_consumes_no_number(units: sa.Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(units) as s:
        assert docnumbers.allocate(s, "pd-shenpi", "refusal", 2026) == "浦审不受〔2026〕00001号"
        raise RuntimeError("the transition fails after numbering")
    with session_scope(units) as s:
        assert docnumbers.allocate(s, "pd-shenpi", "refusal", 2026) == "浦审不受〔2026〕00001号"


def test_unknown_unit_or_kind_is_refused(units: sa.Engine) -> None:
    from engine.errors import InvalidInput, NotFound
    with session_scope(units) as s:
        with pytest.raises(NotFound):
            docnumbers.allocate(s, "nowhere", "acceptance", 2026)
        with pytest.raises(InvalidInput) as e:
            docnumbers.allocate(s, "pd-shenpi", "poster", 2026)
        assert e.value.extra["errors"][0]["field"] == "kind"


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_concurrent_issuers_get_gap_free_numbers(units: sa.Engine) -> None:
    """20 issuers at once at one unit, a quarter of them rolling back after numbering: the committed
    numbers are 1..n without a gap or a repeat."""
    start = threading.Barrier(20)
    committed: list[str] = []
    lock = threading.Lock()

    def issue(i: int) -> None:
        start.wait()
        try:
            with session_scope(units) as s:
                number = docnumbers.allocate(s, "qdxh-shenpi", "acceptance", 2026)
                if i % 4 == 3:
                    raise RuntimeError("rolled back")
            with lock:
                committed.append(number)
        except RuntimeError:
            pass

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(committed) == [f"青西审受〔2026〕{n:05d}号" for n in range(1, 16)]
    with session_scope(units) as s:
        assert s.get(Sequence, docnumbers.sequence_name("qdxh-shenpi", "受", 2026)).value == 15  # type: ignore[union-attr]
        assert s.get(Unit, "qdxh-shenpi") is not None
