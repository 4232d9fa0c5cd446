"""The event feed: every committed history event, ordered, resumable, filtered and scoped, and a
cursor that never skips an event, even with writers committing out of id order on PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ALL_FGS, ALL_GGCS, Demo

from engine import events, intake
from storage.db import session_scope


def read_all(demo: Demo, who: str, after: str | None = None, limit: int = 3, **filters: str) -> tuple[list[dict], str]:
    """Follow next_cursor (and the Link header, which must agree) until a page comes back empty."""
    got: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit, **filters}
    if after is not None:
        params["after"] = after
    while True:
        r = demo.client.get("/api/v1/events", params=params, headers=demo.h(who))
        assert r.status_code == 200, r.text
        body = r.json()
        link = r.headers["link"]
        assert link.endswith('>; rel="next"') and f"after={body['next_cursor']}" in link
        got += body["items"]
        if not body["items"] and body["next_cursor"] == params.get("after", "0"):
            return got, body["next_cursor"]
        params["after"] = body["next_cursor"]


def history_ids(demo: Demo, counter: str | None = None) -> list[str]:
    """Every history event as "<number>-<seq>", of the cases a counter takes part in (or all)."""
    with demo.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.number, h.seq, c.parties FROM history h JOIN cases c ON c.id = h.case_id ORDER BY h.id")).all()
    out = []
    for number, seq, parties in rows:
        parties = parties if isinstance(parties, dict) else __import__("json").loads(parties)
        if counter is None or counter in parties.values():
            out.append(f"{number}-{seq}")
    return out


def test_the_feed_lists_every_event_in_order_and_resumes_from_a_cursor(demo: Demo) -> None:
    a = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    demo.fire("陈静", a["number"], "accept", a["version"])
    b = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    demo.fire("陈静", a["number"], "start_review")
    got, cursor = read_all(demo, "陈静")
    ids = [e["id"] for e in got]
    assert ids == history_ids(demo, "pd-zhengwu") and len(ids) == len(set(ids)) == 4
    assert [e["case"] for e in got] == [a["number"], a["number"], b["number"], a["number"]]
    first = got[0]
    assert first["kind"] == "intake" and first["seq"] == 1 and first["item"] == "GGCSWSXK"
    assert first["counter"] == "pd-zhengwu" and first["to_state"] == "received"
    assert first["at"].endswith("+08:00") and "T" in first["at"]  # RFC 3339, the product's zone
    assert got[1]["kind"] == "transition" and got[1]["trigger"] == "accept" and got[1]["from_state"] == "received"
    assert [int(e["cursor"]) for e in got] == sorted(int(e["cursor"]) for e in got)
    # Resuming: only what came after the saved cursor, and from any event's own cursor too.
    demo.fire("陈静", b["number"], "accept")
    c = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    more, _ = read_all(demo, "陈静", cursor)
    assert [e["id"] for e in more] == [f"{b['number']}-2", f"{c['number']}-1"]
    again, _ = read_all(demo, "陈静", got[1]["cursor"], limit=100)
    assert [e["id"] for e in again] == ids[2:] + [e["id"] for e in more]
    # The same events on every read: positions are stable.
    assert read_all(demo, "陈静", limit=100)[0] == got + more


def test_filters_by_item_kind_counter_and_region(demo: Demo) -> None:
    a = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    demo.fire("陈静", a["number"], "accept", a["version"])
    f = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")  # 济南 → 青岛
    demo.fire("王芳", f["number"], "forward", f["version"])
    demo.fire("李强", f["number"], "approve")
    sup = "赵督查"  # watches 370100, 370211 and 310115: sees all three counters' cases
    assert {e["case"] for e in read_all(demo, sup)[0]} == {a["number"], f["number"]}
    assert {e["case"] for e in read_all(demo, sup, item="FGSFZRBG")[0]} == {f["number"]}
    assert [e["trigger"] for e in read_all(demo, sup, kind="transition")[0]] == ["accept", "forward", "approve"]
    assert {e["case"] for e in read_all(demo, sup, counter="qd-xihai")[0]} == {f["number"]}
    assert {e["case"] for e in read_all(demo, sup, region="310115")[0]} == {a["number"]}
    assert read_all(demo, sup, region="310115", item="FGSFZRBG")[0] == []
    # Both parties of the hand-off see every event of the case, before and after it.
    assert [e["id"] for e in read_all(demo, "李强")[0]] == [f"{f['number']}-{s}" for s in (1, 2, 3)]
    assert [e["id"] for e in read_all(demo, "王芳")[0]] == [f"{f['number']}-{s}" for s in (1, 2, 3)]


def test_a_caller_sees_only_the_cases_its_scopes_reach(demo: Demo) -> None:
    a = demo.create("陈静", "GGCSWSXK", ALL_GGCS)  # 浦东 (310115)
    demo.fire("陈静", a["number"], "accept", a["version"])
    w = demo.create("黄丽", "GGCSWSXK", ALL_GGCS)  # 南沙 (440115)
    assert {e["case"] for e in read_all(demo, "陈静")[0]} == {a["number"]}
    assert {e["case"] for e in read_all(demo, "黄丽")[0]} == {w["number"]}
    assert read_all(demo, "王芳")[0] == []  # a clerk of another counter
    assert read_all(demo, "王芳", counter="pd-zhengwu")[0] == []  # … whatever filter she names
    assert {e["case"] for e in read_all(demo, "赵督查")[0]} == {a["number"]}
    assert {e["case"] for e in read_all(demo, "钱督查")[0]} == {w["number"]}
    assert read_all(demo, "孙设计")[0] == []  # no counter, no region
    # The next cursor moves past what the caller does not see, so it never rescans it.
    cursor = read_all(demo, "王芳")[1]
    assert int(cursor) == len(history_ids(demo))
    r = demo.client.get("/api/v1/events", headers=demo.h("王芳"))
    assert r.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("params, field", [
    ({"after": "abc"}, "after"), ({"after": "-1"}, "after"), ({"after": "99999"}, "after"),
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"since": "1"}, "since"),
])
def test_bad_cursors_and_parameters_are_refused(demo: Demo, params: dict[str, str], field: str) -> None:
    demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    r = demo.client.get("/api/v1/events", params=params, headers=demo.h("陈静"))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert any(field in e["field"] for e in r.json()["errors"]), r.json()
    assert demo.client.get("/api/v1/events").status_code == 401


def _read_on(demo: Demo, actor: Any, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    with session_scope(demo.engine, readonly=True) as s:
        page = events.feed(s, actor, cursor, events.Filters(), 200)
    return page["items"], page["next_cursor"]


@pytest.mark.dialect
def test_an_event_committed_after_a_higher_id_was_read_is_not_skipped(demo: Demo) -> None:
    """PostgreSQL: transaction A takes an event id, B takes the next one and commits, a reader
    reads, then A commits. ``id > last`` skips A's event for good; the feed's cursor does not."""
    if demo.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: B cannot commit while A is open")
    actor = demo.actor("陈静")
    first, second = (demo.create("陈静", "GGCSWSXK", {})["number"] for _ in range(2))
    _, cursor = _read_on(demo, actor, None)
    with demo.engine.connect() as conn:
        last_id = conn.execute(sa.text("SELECT max(id) FROM history")).scalar_one()
    took_id, b_done = threading.Event(), threading.Event()

    def a() -> None:
        with session_scope(demo.engine) as s:
            intake.set_material(s, first, actor, "application_form", "received")
            s.flush()
            took_id.set()
            b_done.wait(30)  # commits after B and after the reader

    thread = threading.Thread(target=a)
    thread.start()
    assert took_id.wait(30)
    with session_scope(demo.engine) as s:
        intake.set_material(s, second, actor, "application_form", "received")
    items, cursor = _read_on(demo, actor, cursor)
    event_id = sa.text("SELECT h.id FROM history h JOIN cases c ON c.id = h.case_id WHERE h.seq = 2 AND c.number = :n")
    with demo.engine.connect() as conn:
        naive = conn.execute(sa.text("SELECT id FROM history WHERE id > :last ORDER BY id"),
                             {"last": last_id}).scalars().all()
        b_id = conn.execute(event_id, {"n": second}).scalar_one()
    assert [e["id"] for e in items] == [f"{second}-2"] and naive == [b_id]  # A's is not committed yet
    b_done.set()
    thread.join(30)
    with demo.engine.connect() as conn:
        a_id = conn.execute(event_id, {"n": first}).scalar_one()
        after_naive = conn.execute(sa.text("SELECT id FROM history WHERE id > :last"), {"last": b_id}).scalars().all()
    assert a_id < b_id and after_naive == []  # committed below the naive cursor: lost to it
    items, _ = _read_on(demo, actor, cursor)
    assert [e["id"] for e in items] == [f"{first}-2"]  # the feed hands it out next


@pytest.mark.dialect
def test_an_event_whose_transaction_began_after_the_last_commit_is_not_skipped(demo: Demo) -> None:
    """PostgreSQL: a snapshot's xmax is one past the newest *completed* transaction, not the next id
    to be handed out. C takes a transaction id, A takes a later one and an event id, C takes the
    next event id and commits: no transaction at or above A's has completed, so "xmin has passed
    the xmax seen" holds while A is still open. Numbering must not take that for "everything up to
    C's event has ended" and move past A's event."""
    if demo.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: C cannot commit while A is open")
    actor = demo.actor("陈静")
    c, a, d = (demo.create("陈静", "GGCSWSXK", {})["number"] for _ in range(3))
    _, cursor = _read_on(demo, actor, None)
    for material in ("application_form", "legal_rep_id"):  # a settled state with a recent bound
        with session_scope(demo.engine) as s:
            intake.set_material(s, d, actor, material, "received")
        events.catch_up(demo.engine)
    with session_scope(demo.engine) as sc:
        sc.execute(sa.text("UPDATE cases SET updated_at = updated_at WHERE number = :n"), {"n": c})  # C's xid
        with session_scope(demo.engine) as sa_:
            intake.set_material(sa_, a, actor, "application_form", "received")
            sa_.flush()  # A: a later xid, then an event id
            intake.set_material(sc, c, actor, "application_form", "received")
            sc.commit()  # C: the next event id, committed
            events.catch_up(demo.engine)
            with session_scope(demo.engine) as s:
                intake.set_material(s, d, actor, "floor_plans", "received")
            events.catch_up(demo.engine)  # with A still open
        # A commits here
    seen: list[str] = []
    while True:
        items, after = _read_on(demo, actor, cursor)
        seen += [e["id"] for e in items]
        if after == cursor and not items:
            break
        cursor = after
    assert f"{a}-2" in seen, seen
    assert sorted(seen) == sorted([f"{d}-2", f"{d}-3", f"{a}-2", f"{c}-2", f"{d}-4"])


@pytest.mark.dialect
def test_the_cursor_never_skips_an_event_under_concurrent_writers(demo: Demo) -> None:
    """Writers append events on their own cases while a slow one keeps each of its transactions
    open after taking an id, so ids commit out of order on PostgreSQL. The feed's reader, following
    its cursor all along, misses none, sees none twice, and sees each case's events in order."""
    actor = demo.actor("陈静")
    numbers = [demo.create("陈静", "GGCSWSXK", {})["number"] for _ in range(5)]
    materials = ["application_form", "legal_rep_id", "floor_plans", "hygiene_rules"]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(number: str, pause: float, rounds: int) -> None:
        try:
            for i in range(rounds):
                with session_scope(demo.engine) as s:
                    intake.set_material(s, number, actor, materials[i % 4], "received" if i % 2 else "missing")
                    time.sleep(pause)  # the event's id is taken; its commit waits
        except BaseException as exc:
            errors.append(exc)

    seen: list[dict[str, Any]] = []

    def reader() -> None:
        cursor = None
        try:
            while not stop.is_set():
                items, cursor = _read_on(demo, actor, cursor)
                seen.extend(items)
            while True:  # the writers are done: read to the end
                items, after = _read_on(demo, actor, cursor)
                seen.extend(items)
                if after == cursor and not items:
                    return
                cursor = after
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(numbers[0], 0.15, 12))]
    threads += [threading.Thread(target=writer, args=(n, 0.0, 60)) for n in numbers[1:]]
    read = threading.Thread(target=reader)
    read.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    read.join(120)
    assert not errors, errors
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was handed out twice"
    assert sorted(ids) == sorted(history_ids(demo)), "an event was skipped"
    for n in numbers:
        seqs = [e["seq"] for e in seen if e["case"] == n]
        assert seqs == list(range(1, len(seqs) + 1))


def _forget_positions(demo: Demo) -> None:
    """As the migration leaves an installation that already has history: nothing numbered yet."""
    with demo.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM feed_events"))
        conn.execute(sa.text("DELETE FROM feed_case_counters"))
        conn.execute(sa.text("UPDATE feed_state SET last_position = 0, low_water = 0, pending_high = NULL, "
                             "pending_xmax = NULL"))


def test_history_from_before_the_feed_is_numbered_in_batches(demo: Demo) -> None:
    for _ in range(3):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        demo.fire("陈静", case["number"], "accept", case["version"])
    _forget_positions(demo)
    runs = []
    while n := events.catch_up(demo.engine, batch=4):
        runs.append(n)
    assert runs == [4, 2]
    with demo.engine.connect() as conn:
        numbered = conn.execute(sa.text("SELECT history_id FROM feed_events ORDER BY position")).scalars().all()
        ids = conn.execute(sa.text("SELECT id FROM history ORDER BY id")).scalars().all()
    assert numbered == ids
    assert [e["id"] for e in read_all(demo, "陈静")[0]] == history_ids(demo)
    # A subscription made "now" while the numbering is still behind starts after all of it.
    _forget_positions(demo)
    r = demo.client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=demo.h("陈静"))
    assert r.status_code == 201 and r.json()["delivered_through"] == str(len(ids))
