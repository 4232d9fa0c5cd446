"""No case is stranded by assignment: every path of every item of the published catalog, walked by
clerks who hold exactly one role each, reaches every final state without anyone reassigning
anything — and so does each 情形 answer that selects a path of the flow (延续 → 免于现场核查).

At each step the walk takes every transition a person could fire now. For each it picks the
clerk with that one role at the counter the law says — for the intake counter's steps and 撤回,
the clerk who took the case in (its companion) — checks that nothing but the item's own guards
could stop them, fires it through the API and lets the jobs run. A path ends at a final state, or
where a step would lead back to a state the path has been in (补正, 退回: walked from the first
visit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Demo, certificate_data, run_jobs

from core.settings import ROOT, get_settings
from engine import catalog, situations
from engine.actors import add_clerk
from engine.advance import load_case, source_holder, why_forbidden
from engine.catalog import read_catalog
from engine.directory_manage import counter_kind
from engine.guards import Guards
from storage.db import session_scope
from storage.object_factory import get_store
from storage.tables import Counter, CounterItem
from video.rooms import clerk_actor

ROLES = ("clerk", "reviewer", "approver", "inspector")
APPLICANT = {"name": "某某有限公司", "kind": "company", "id_number": "91370100MA3C4K2L43",
             "phone": "13800138000", "address": "山东省济南市历下区经十路 100 号"}
# The routes the walk prefers, for variety (each staffed counter; one case decided in another
# province): item → (intake counter, competent region when it is another's). Every other item of
# the catalog is taken in at the first staffed counter that takes it in (``routes``).
# Every item of the catalog (tests/test_documents.py walks them too).
ITEMS = [i.definition.code for i in read_catalog(ROOT / "catalog" / "items")]
PREFERRED = {"FGSFZRBG": ("jn-kuayu", "370211"), "CBWLSXK": ("qd-xihai", None),
             "MBXXZZHB": ("pd-zhengwu", None), "YXGSSLDJ": ("qd-xihai", None),
             "YDJYBA": ("pd-zhengwu", None), "GJJZYJX": ("qd-xihai", None)}
PAYLOAD = {"comment": "理由", "commitment": {"signer": "张三"}}
Step = tuple[str, str, str]  # trigger, counter, role


def routes(demo: Demo) -> dict[str, tuple[str, str | None]]:
    """Every item of the catalog with the counter that takes its case in (and the competent region
    when that counter does not decide it itself), from the alliance directory."""
    with session_scope(demo.engine, readonly=True) as s:
        published = {it["code"] for it in catalog.list_items(s)}
        assert set(ITEMS) <= published, "the demo publishes the whole catalog"
        rows = s.execute(sa.select(CounterItem.item_code, CounterItem.counter_id, CounterItem.role, Counter.region_code)
                         .join(Counter, Counter.id == CounterItem.counter_id)
                         .order_by(CounterItem.counter_id)).all()
        staffed = {c for _, c, _, _ in rows if counter_kind(s, c) == "staffed"}
    out: dict[str, tuple[str, str | None]] = {}
    for code in ITEMS:
        if code in PREFERRED:
            out[code] = PREFERRED[code]
            continue
        by_role: dict[str, list[tuple[str, str]]] = {}
        for item, counter, role, region in rows:
            if item == code and counter in staffed:
                by_role.setdefault(role, []).append((counter, region))
        intake = by_role["intake"][0][0]
        competent = [r for c, r in by_role.get("competent", []) if c == intake]
        out[code] = (intake, None if competent else by_role["competent"][0][1])
    return out


def answer_sets(d: Any) -> list[dict[str, str]]:
    """The 情形 answers the walk takes a case of the item in with: the last option of each
    question, and that with each option that selects a path of the flow in its place (延续 →
    免于现场核查, a venue that is no 公众聚集场所 → no 消防 check)."""
    base = {q.id: q.options[-1].id for q in d.situations}
    out = [base]
    for q in d.situations:
        for o in q.options:
            if o.path and base[q.id] != o.id:
                out.append({**base, q.id: o.id})
    return out


def key(answers: dict[str, str] | None) -> str:
    return str(sorted((answers or {}).items()))


class Walk:
    def __init__(self, demo: Demo) -> None:
        self.routes = routes(demo)
        self.demo = demo
        self.tokens: dict[tuple[str, str], str] = {}  # (counter, role) → a one-role clerk's token
        self.ids: dict[tuple[str, str], int] = {}
        with session_scope(demo.engine) as s:
            for (c,) in s.execute(sa.select(Counter.id)).all():
                for role in ROLES:
                    clerk, token = add_clerk(s, f"{role}·{c}", c, [role], 30)
                    self.tokens[(c, role)], self.ids[(c, role)] = token, clerk.id
        self.finals: dict[str, set[str]] = {}
        self.finals_by_answers: dict[tuple[str, str], set[str]] = {}  # (code, answers) → finals reached
        self.fired = 0
        self.answers: dict[str, str] | None = None  # the 情形 answers of the next cases; None: answer_sets()[0]

    def answers_for(self, d: Any) -> dict[str, str]:
        return self.answers if self.answers is not None else answer_sets(d)[0]

    def create(self, code: str) -> str:
        intake, competent = self.routes[code]
        with session_scope(self.demo.engine, readonly=True) as s:
            item = catalog.compiled(s, catalog.latest_version(s, code).id)
        # 事项情形: these answers, and exactly the materials they ask for.
        answers = self.answers_for(item.definition)
        body: dict[str, Any] = {"item_code": code, "applicant": APPLICANT, "situation": answers,
                                "materials": {m.id: "received" for m in
                                              situations.selected_materials(item.definition, answers)}}
        if competent:
            body["competent_region"] = competent
        r = self.demo.client.post("/api/v1/cases", json=body,
                                  headers={"Authorization": f"Bearer {self.tokens[(intake, 'clerk')]}"})
        assert r.status_code == 201, r.text
        self.drain()
        return str(r.json()["number"])

    def drain(self) -> None:
        run_jobs(self.demo.engine)

    def state(self, number: str) -> tuple[set[str], bool]:
        with session_scope(self.demo.engine, readonly=True) as s:
            case = load_case(s, number)
            item = catalog.compiled(s, case["item_version_id"])
            return set(item.active_names(case["state"], case["branches"])), item.table[case["state"]].state.final

    def choices(self, number: str) -> list[tuple[Step, str]]:
        """Every step a person could take now, with the state it leads to."""
        out = []
        with session_scope(self.demo.engine, readonly=True) as s:
            case = load_case(s, number)
            item = catalog.compiled(s, case["item_version_id"])
            for name in item.active_names(case["state"], case["branches"]):
                for (trigger, src), t in item.routes.items():
                    if src != name or t.auto or set(t.roles) <= {"system"}:
                        continue
                    withdraws = item.table[t.dest].state.outcome == "withdrawn"
                    counter = case["intake_counter_id"] if withdraws else source_holder(item, case, src)
                    companion = withdraws or (item.table[src].parallel is None
                                              and item.table[src].state.holder == "intake")
                    role = "clerk" if companion else next(r for r in t.roles if r in ROLES)
                    actor = clerk_actor(s, self.ids[(counter, role)])
                    missing = why_forbidden(item, case, src, t, actor)
                    assert not missing, f"{case['item_code']} '{trigger}' in '{src}' stranded: {missing}"
                    guards = Guards(s, item, case, dict(PAYLOAD))
                    if any(guards.why_closed(g, t.dest) for g in item.guards_of(t) if g != "comment_given"):
                        continue  # closed by the item's own rule (not the step the case came from, …)
                    out.append(((trigger, counter, role), t.dest))
        return out

    def fire(self, number: str, step: Step) -> None:
        trigger, counter, role = step
        with session_scope(self.demo.engine, readonly=True) as s:
            version = load_case(s, number)["version"]
        headers = {"Authorization": f"Bearer {self.tokens[(counter, role)]}"}
        view = self.demo.client.get(f"/api/v1/cases/{number}", headers=headers).json()
        body = {**PAYLOAD, **certificate_data(view, trigger)}  # an approver fills the certificate's fields
        r = self.demo.client.post(f"/api/v1/cases/{number}/triggers/{trigger}", json=body,
                                  headers={**headers, "If-Match": f'"{version}"'})
        assert r.status_code == 200, f"{trigger} by {role}@{counter}: {r.text}"
        self.fired += 1
        self.drain()

    def explore(self, code: str, prefix: list[Step], seen: set[str]) -> None:
        number = self.create(code)
        for step in prefix:
            self.fire(number, step)
        active, final = self.state(number)
        if final:
            self.finals.setdefault(code, set()).update(active)
            self.finals_by_answers.setdefault((code, key(self.answers)), set()).update(active)
            return
        seen = seen | active
        for step, dest in self.choices(number):
            if dest not in seen:
                self.explore(code, [*prefix, step], seen)


@pytest.mark.slow
def test_every_path_of_every_demo_item_reaches_every_final_state_with_one_role_clerks(
        demo: Demo, tmp_path: Path) -> None:
    get_settings().object_dir = tmp_path / "objects"
    get_store.cache_clear()
    walk = Walk(demo)
    assert len(walk.routes) >= 12 and set(PREFERRED) <= set(walk.routes)  # the whole catalog
    with session_scope(demo.engine, readonly=True) as s:
        items = {code: catalog.compiled(s, catalog.latest_version(s, code).id) for code in walk.routes}
    walked = 0
    for code, item in items.items():
        for answers in answer_sets(item.definition):
            walk.answers = answers
            walk.explore(code, [], set())
            approved = {n for n in walk.finals_by_answers.get((code, key(answers)), set())
                        if item.table[n].state.outcome == "approved"}
            assert approved, f"{code} with {answers}: no path to an approval"
            walked += 1
    for code, item in items.items():
        finals = {n for n, ref in item.table.items() if ref.state.final and ref.parallel is None}
        assert walk.finals.get(code) == finals, code
    assert walked >= len(items) + 2  # SPJYXK 延续, YJSKBCYD without a 消防 check
    assert walk.fired > 50
