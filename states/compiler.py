"""Compile an item definition into a `transitions` machine: the law a case moves under.

The machine is built once per item version and shared; a case is bound to it per call by a
tiny model object carrying the state read from the database (see ``engine.advance``). Guards
are conditions that call back into the engine through the event's ``check`` keyword, so this
package stays free of database code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transitions import EventData, Machine
from transitions.extensions.nesting import HierarchicalMachine, NestedState

from states import phases
from states.graph import StateRef, branch_initials, state_table
from states.schema import ItemDefinition, State, Transition

# Qualified names use dots: ``joint.health.pending``. Identifiers cannot contain a dot.
NestedState.separator = "."

# The guard the compiler adds to every transition some 情形 answer selects (engine.guards).
SITUATION_GUARD = "situation_path"


def situation_paths(d: ItemDefinition) -> dict[str, list[tuple[str, str]]]:
    """trigger → the (question, option) pairs whose answer opens it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for q in d.situations:
        for o in q.options:
            for trigger in o.path:
                out.setdefault(trigger, []).append((q.id, o.id))
    return out


# (guard name, the transition's destination) → open? The destination matters to 退回's guard.
GuardCheck = Callable[[str, str], bool]


def _guard(name: str, dest: str) -> Callable[[EventData], bool]:
    def condition(event: EventData) -> bool:
        check: GuardCheck = event.kwargs["check"]
        return check(name, dest)

    condition.__name__ = f"guard_{name}"
    return condition


@dataclass
class CompiledItem:
    definition: ItemDefinition
    table: dict[str, StateRef]
    machine: Machine
    nested: bool
    # (trigger, qualified source) → the one transition it names; the checker forbids duplicates.
    routes: dict[tuple[str, str], Transition] = field(default_factory=dict)
    # qualified source → transitions the engine fires by itself once their guards pass
    autos: dict[str, list[Transition]] = field(default_factory=dict)
    _guards: dict[int, list[str]] = field(default_factory=dict)
    # states.phases: the intake phase (leaving it is 受理) and the decided states (entering one is
    # the decision).
    intake_phase: frozenset[str] = frozenset()
    decided: frozenset[str] = frozenset()

    @property
    def initial(self) -> str:
        return self.definition.states[0].id

    def guards_of(self, t: Transition) -> list[str]:
        return self._guards[id(t)]

    def _implied_guards(self, t: Transition) -> list[str]:
        """Declared guards, plus the join guard every exit from a parallel state implies."""
        # Leaving to withdraw or refuse needs no branch to be done.
        ends_early = self.table[t.dest].state.outcome in ("withdrawn", "rejected", "not_accepted")
        joins = not ends_early and any(self.table[src].state.parallel for src in t.source)
        extra = ["all_branches_done"] if joins and "all_branches_done" not in t.guards else []
        # 事项情形: a transition some answer selects is open only on the cases that chose it.
        if t.trigger in situation_paths(self.definition) and SITUATION_GUARD not in t.guards:
            extra.append(SITUATION_GUARD)
        return [*t.guards, *extra]

    def parse_model_state(self, value: Any) -> tuple[str, dict[str, str] | None]:
        """The machine's model state back to (state, branches) as stored on the case row."""
        names = value if isinstance(value, list) else [value]
        if len(names) == 1 and "." not in names[0]:
            return names[0], None
        branches = {}
        for n in names:
            parent, branch, sub = n.split(".")
            branches[branch] = sub
        return parent, branches

    def active_names(self, state: str, branches: dict[str, str] | None) -> list[str]:
        """Every qualified state the case is in: the parallel state and each branch's."""
        if branches:
            return [state, *(f"{state}.{b}.{s}" for b, s in branches.items())]
        return [state]

    def model_state(self, state: str, branches: dict[str, str] | None) -> Any:
        if branches:
            return [f"{state}.{b}.{s}" for b, s in branches.items()]
        return state

    def entry_branches(self, state: str) -> dict[str, str] | None:
        if not self.table[state].state.parallel:
            return None
        return {n.split(".")[1]: n.split(".")[2] for n in branch_initials(self.definition, state)}

    def fire(self, model: Any, trigger: str, check: GuardCheck) -> bool:
        if self.nested:
            return bool(self.machine.trigger_event(model, trigger, check=check))
        return bool(self.machine.events[trigger].trigger(model, check=check))

    def branch_done(self, state: str, branches: dict[str, str]) -> dict[str, bool]:
        return {b: self.table[f"{state}.{b}.{s}"].state.final for b, s in branches.items()}


def _state_spec(s: State) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": s.id, "final": s.final}
    if s.parallel:
        spec["parallel"] = [
            {
                "name": b.id,
                "children": [{"name": x.id, "final": x.final} for x in b.states],
                "initial": b.states[0].id,
            }
            for b in s.parallel
        ]
    return spec


def compile_item(d: ItemDefinition) -> CompiledItem:
    nested = any(s.parallel for s in d.states)
    cls = HierarchicalMachine if nested else Machine
    machine = cls(
        model=None,
        states=[_state_spec(s) for s in d.states],
        initial=d.states[0].id,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )
    table = state_table(d)
    compiled = CompiledItem(d, table, machine, nested, intake_phase=phases.intake_phase(d, table),
                            decided=phases.decided(d, table))
    for t in d.transitions:
        compiled._guards[id(t)] = compiled._implied_guards(t)
        if t.auto:
            for src in t.source:
                compiled.autos.setdefault(src, []).append(t)
        conditions = [_guard(g, t.dest) for g in compiled.guards_of(t)]
        machine.add_transition(t.trigger, t.source, t.dest, conditions=conditions)
        for src in t.source:
            compiled.routes[(t.trigger, src)] = t
    return compiled
