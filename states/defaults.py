"""What every item has without repeating it: 撤回 and 退回 (a catalog-wide default).

- **撤回** (the applicant withdraws): a ``withdraw`` transition from every state before the
  decision (``states.phases``) to a final ``withdrawn`` state (status 14), recorded by the
  applicant's companion clerk or by the applicant on the progress page, with a reason. An item
  narrows it with ``withdraw: {from: [...]}`` (``from: []`` turns it off) or by declaring its
  own ``withdraw`` transition.
- **退回** (send back): from a state a person reached from another (both before the decision,
  outside the intake phase's own loop), a ``back_to_<state>`` transition back to it, for the
  people working on the later state, with a reason. The ``previous_step`` guard opens only the
  one leading to the step the case actually came from.

The synthesized transitions are ordinary transitions afterwards: checked, compiled and drawn
like the item's own (diagrams leave the 退回 ones out to stay readable).
"""

from __future__ import annotations

from states.graph import state_table
from states.phases import decided, intake_phase
from states.schema import ItemDefinition, State, Transition

WITHDRAW = "withdraw"
WITHDRAWN = "withdrawn"
BACK_PREFIX = "back_to_"
APPLICANT = "applicant"


def expand(d: ItemDefinition) -> ItemDefinition:
    """The definition with the default 撤回 and 退回 transitions added."""
    table = state_table(d)
    done = decided(d, table)
    states, transitions = list(d.states), list(d.transitions)
    own = {t.trigger for t in transitions}
    before_decision = [s.id for s in d.states if not s.final and s.id not in done]
    sources = before_decision if d.withdraw is None else [s for s in d.withdraw.source if s in table]
    if WITHDRAW not in own and sources:
        target = next((s for s in states if s.id == WITHDRAWN), None)
        if target is None:
            states.append(State(id=WITHDRAWN, label="已撤回", holder="intake", final=True, outcome="withdrawn"))
        transitions.append(Transition.model_validate({
            "trigger": WITHDRAW, "label": "撤回申请", "from": sources, "to": WITHDRAWN,
            "roles": ["clerk", APPLICANT], "guards": ["comment_given"], "jobs": ["notify_applicant"]}))
    transitions += _send_backs(d, table, done, own)
    return d.model_copy(update={"states": states, "transitions": transitions})


def _send_backs(d: ItemDefinition, table: dict, done: frozenset[str], own: set[str]) -> list[Transition]:  # type: ignore[type-arg]
    phase = intake_phase(d, table)
    top = {s.id: s for s in d.states if not s.parallel}
    leaving: dict[str, set[str]] = {}
    for t in d.transitions:
        for src in t.source:
            leaving.setdefault(src, set()).update(r for r in t.roles if r != "system")
    edges: dict[str, list[str]] = {}
    for t in d.transitions:
        b = t.dest
        if set(t.roles) <= {"system"} or b not in top or top[b].final or b in done or b in phase:
            continue
        for a in t.source:
            if a in top and not top[a].final and a not in done and a != b and (a not in phase or a == d.states[0].id):
                edges.setdefault(b, [])
                if a not in edges[b]:
                    edges[b].append(a)
    out = []
    for b, sources in edges.items():
        roles = sorted(leaving.get(b, set()))
        if not roles:
            continue
        for a in sources:
            trigger = f"{BACK_PREFIX}{a}"[:63]
            if trigger in own or any(t.dest == a and b in t.source for t in d.transitions):
                continue  # the item says itself how to go back
            out.append(Transition.model_validate({
                "trigger": trigger, "label": f"退回「{top[a].label}」", "from": [b], "to": a,
                "roles": roles, "guards": ["comment_given", "previous_step"]}))
    return out


def is_send_back(t: Transition) -> bool:
    return t.trigger.startswith(BACK_PREFIX) and "previous_step" in t.guards


def is_default(t: Transition) -> bool:
    """A transition this module added (撤回 for the applicant, 退回)."""
    return is_send_back(t) or (t.trigger == WITHDRAW and APPLICANT in t.roles)


def drawn(d: ItemDefinition) -> tuple[list[State], list[Transition]]:
    """What a diagram shows: the item's own states and transitions. The defaults, open almost
    everywhere, would bury them; the diagram says they exist instead."""
    transitions = [t for t in d.transitions if not is_default(t)]
    reached = {t.dest for t in transitions} | {d.states[0].id}
    return [s for s in d.states if s.id in reached or s.parallel or not s.final], transitions
