"""Conflicting triggers fired at once: exactly one wins, the rest get a clean refusal."""

from __future__ import annotations

import threading

from conftest import ALL_GGCS, Demo

from engine.advance import advance
from engine.errors import EngineError, StaleVersion, TriggerNotOpen
from storage.db import session_scope


def test_racing_clerks_one_winner_per_case(demo: Demo) -> None:
    actor = demo.actor("陈静")
    cases = [demo.create("陈静", "GGCSWSXK", ALL_GGCS) for _ in range(4)]
    results: list[str] = []
    lock = threading.Lock()

    def attempt(number: str, trigger: str, payload: dict[str, str]) -> None:
        try:
            with session_scope(demo.engine) as s:
                advance(s, number, trigger, actor, payload, expected_version=1)
            outcome = "won"
        except (StaleVersion, TriggerNotOpen):
            outcome = "lost"
        except EngineError as exc:  # pragma: no cover - would be a bug
            outcome = f"error:{exc}"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt, args=(c["number"], trig, {"comment": "并发测试"}))
               for c in cases for trig in ("accept", "refuse", "request_supplement")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("won") == len(cases) and results.count("lost") == 2 * len(cases), results
    for c in cases:
        assert demo.count("history", case_id=_case_id(demo, c["number"])) == 2  # intake + one winner


def _case_id(demo: Demo, number: str) -> int:
    with demo.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT id FROM cases WHERE number = '{number}'").scalar_one())
