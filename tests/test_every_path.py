"""No case is stranded by assignment: every path of every demo item, walked by clerks who hold
exactly one role each, reaches every final state without anyone reassigning anything.

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

from core.settings import get_settings
from engine import catalog, situations
from engine.actors import add_clerk
from engine.advance import load_case, source_holder, why_forbidden
from engine.guards import Guards
from storage.db import session_scope
from storage.object_factory import get_store
from storage.tables import Counter
from video.rooms import clerk_actor

ROLES = ("clerk", "reviewer", "approver", "inspector")
APPLICANT = {"name": "某某有限公司", "kind": "company", "id_number": "91370100MA3C4K2L43",
             "phone": "13800138000", "address": "山东省济南市历下区经十路 100 号"}
# item → (intake counter, competent region when it is another's)
ITEMS = {"GGCSWSXK": ("jn-kuayu", None), "FGSFZRBG": ("jn-kuayu", "370211"),
         "CBWLSXK": ("qd-xihai", None), "MBXXZZHB": ("pd-zhengwu", None),
         "GTGSHSLDJ": ("jn-kuayu", None), "YXGSSLDJ": ("qd-xihai", None), "SPJYXK": ("jn-kuayu", None),
         "YDJYBA": ("pd-zhengwu", None), "YLBXZYJX": ("jn-kuayu", None), "GJJZYJX": ("qd-xihai", None),
         "YJSKBCYD": ("pd-zhengwu", None), "YJSXSECS": ("pd-zhengwu", None)}
PAYLOAD = {"comment": "理由", "commitment": {"signer": "张三"}}
Step = tuple[str, str, str]  # trigger, counter, role


class Walk:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.tokens: dict[tuple[str, str], str] = {}  # (counter, role) → a one-role clerk's token
        self.ids: dict[tuple[str, str], int] = {}
        with session_scope(demo.engine) as s:
            for (c,) in s.execute(sa.select(Counter.id)).all():
                for role in ROLES:
                    clerk, token = add_clerk(s, f"{role}·{c}", c, [role], 30)
                    self.tokens[(c, role)], self.ids[(c, role)] = token, clerk.id
        self.finals: dict[str, set[str]] = {}
        self.fired = 0

    def create(self, code: str) -> str:
        intake, competent = ITEMS[code]
        with session_scope(self.demo.engine, readonly=True) as s:
            item = catalog.compiled(s, catalog.latest_version(s, code).id)
        # 事项情形: the last answer of each question, and exactly the materials it asks for.
        answers = {q.id: q.options[-1].id for q in item.definition.situations}
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
    for code in ITEMS:
        walk.explore(code, [], set())
    with session_scope(demo.engine, readonly=True) as s:
        for code in ITEMS:
            item = catalog.compiled(s, catalog.latest_version(s, code).id)
            finals = {n for n, ref in item.table.items() if ref.state.final and ref.parallel is None}
            assert walk.finals.get(code) == finals, code
    assert walk.fired > 50
