"""Where a case stands in its life, derived from the item's graph (no declarations needed).

- The *intake phase* (收件阶段): the initial state and the intake counter's states reachable from
  it without leaving the intake counter (补正 before 受理). Leaving it is 受理: the decision
  periods start there (行政许可法 art. 42).
- *Decided* states: non-final states from which no refusal (不予许可, 不予受理) can be reached any
  more. Entering one is the decision: the certificate is due within ten working days (art. 44),
  and the applicant can no longer withdraw.
"""

from __future__ import annotations

from collections import deque

from states.graph import StateRef, branch_initials, transition_edges
from states.schema import ItemDefinition

REFUSALS = ("rejected", "not_accepted")


def _edges(d: ItemDefinition, table: dict[str, StateRef]) -> dict[str, set[str]]:
    edges = transition_edges(d, table)
    for n, ref in table.items():
        if ref.state.parallel:  # a parallel state is left through its branches as well
            edges[n].update(branch_initials(d, n))
    return edges


def intake_phase(d: ItemDefinition, table: dict[str, StateRef]) -> frozenset[str]:
    edges = _edges(d, table)
    start = d.states[0].id
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in edges[todo.popleft()]:
            ref = table[nxt]
            if nxt not in seen and ref.parallel is None and ref.state.holder == "intake" and not ref.state.final:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


def decided(d: ItemDefinition, table: dict[str, StateRef]) -> frozenset[str]:
    edges = _edges(d, table)
    out = set()
    for name, ref in table.items():
        if ref.state.final or ref.parallel is not None:
            continue
        seen, todo = {name}, deque([name])
        refusable = False
        while todo and not refusable:
            for nxt in edges[todo.popleft()]:
                if table[nxt].state.final and table[nxt].state.outcome in REFUSALS:
                    refusable = True
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        if not refusable:
            out.add(name)
    return frozenset(out)
