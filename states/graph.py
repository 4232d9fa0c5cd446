"""An item's states by qualified name, and where its transitions lead: what the checker, the
phases and the compiler all walk."""

from __future__ import annotations

from dataclasses import dataclass

from states.schema import ItemDefinition, State


@dataclass(frozen=True)
class StateRef:
    """A state by its qualified name: ``review`` or ``joint.health.pending``."""

    name: str
    state: State
    parallel: str | None  # the enclosing parallel state, for branch states
    branch: str | None
    path: tuple[str | int, ...]  # where it is in the YAML document


def state_table(d: ItemDefinition) -> dict[str, StateRef]:
    table: dict[str, StateRef] = {}
    for i, s in enumerate(d.states):
        table.setdefault(s.id, StateRef(s.id, s, None, None, ("states", i)))
        for j, b in enumerate(s.parallel or []):
            for k, sub in enumerate(b.states):
                name = f"{s.id}.{b.id}.{sub.id}"
                path = ("states", i, "parallel", j, "states", k)
                table.setdefault(name, StateRef(name, sub, s.id, b.id, path))
    return table


def branch_initials(d: ItemDefinition, parallel_id: str) -> list[str]:
    s = next(s for s in d.states if s.id == parallel_id)
    return [f"{s.id}.{b.id}.{b.states[0].id}" for b in s.parallel or []]


def transition_edges(d: ItemDefinition, table: dict[str, StateRef]) -> dict[str, set[str]]:
    """State → the states its transitions lead to (entering a parallel state enters its branches)."""
    edges: dict[str, set[str]] = {n: set() for n in table}
    for t in d.transitions:
        if t.dest not in table:
            continue
        targets = {t.dest}
        if table[t.dest].state.parallel:
            targets.update(branch_initials(d, t.dest))
        for src in t.source:
            if src in edges:
                edges[src].update(targets)
    return edges
