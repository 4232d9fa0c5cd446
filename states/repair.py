"""The checker's rules on a definition the schema refuses: an unknown field is dropped, a refused or
missing value gets a stand-in the schema takes (or, failing that, its list entry is cut out), the
rest is validated again, and the semantic checks run on what remains,
with every position mapped back to the text as written. The designer then sees the schema's
problems and the checker's in one round.

What only follows from a repair is not reported: problems naming a stand-in or a state or trigger
that was cut or repaired, and — once whole states or transitions were cut — reachability and dead ends.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import ValidationError

from states.schema import ItemDefinition
from states.yamlpos import Located, Path_, Position

ROUNDS = 12
STAND_IN = "__缺失__"
_QUOTED = re.compile(r"'([^']+)'")
_CONSEQUENCES = ("从初始状态不可达", "没有任何出口转换", "没有终态")


class _Cut:
    """A copy of the parsed data with parts cut out, and the way back to the original paths."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = copy.deepcopy(data)
        self.kept: dict[tuple[str | int, ...], list[int]] = {}  # a list's original path → indices left
        self.names: set[str] = set()  # ids and triggers of the entries cut
        self.entries = False  # a whole state or transition was cut

    def original(self, path: Path_) -> tuple[str | int, ...]:
        out: list[str | int] = []
        node: Any = self.data
        for part in path:
            if isinstance(part, int) and isinstance(node, list):
                kept = self.kept.get(tuple(out))
                out.append(kept[part] if kept is not None and part < len(kept) else part)
                node = node[part] if part < len(node) else None
            else:
                out.append(part)
                node = node.get(part) if isinstance(node, dict) else None
        return tuple(out)

    @staticmethod
    def target(loc: tuple[str | int, ...], missing: bool) -> tuple[str | int, ...] | None:
        """What to cut for a refused ``loc``: the field, or its list entry when the field is missing."""
        if missing or len(loc) < 2:  # a field of the definition itself is not cut (_stand_in)
            entry = max((i for i, p in enumerate(loc) if isinstance(p, int)), default=None)
            if entry is None:
                return None  # a field of the definition itself: nothing left to check without it
            return loc[:entry + 1]
        return loc

    def cut(self, loc: tuple[str | int, ...]) -> bool:
        parent = self.data
        for part in loc[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                return False
        last = loc[-1]
        if isinstance(parent, dict) and last in parent:
            del parent[last]
            return True
        if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            key = self.original(loc[:-1])
            kept = self.kept.setdefault(key, list(range(len(parent))))
            entry = parent.pop(last)
            del kept[last]
            self.entries |= loc[0] in ("states", "transitions")
            if isinstance(entry, dict):
                self.names |= {v for k, v in entry.items() if k in ("id", "trigger") and isinstance(v, str)}
            return True
        return False


class _Mapped(Located):
    """Positions of the cut copy's paths, read in the original text."""

    def __init__(self, located: Located, cut: _Cut) -> None:
        super().__init__(located.data, located.positions)
        self._cut = cut

    def at(self, path: Path_) -> Position:
        return super().at(self._cut.original(path))


def _loc(error: Any) -> tuple[str | int, ...]:
    return tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))


def repaired(located: Located, err: ValidationError) -> tuple[ItemDefinition, Located, _Cut] | None:
    """The definition without what the schema refused, positions into the original text, and what
    was cut; None when the refused part is the definition itself."""
    if not isinstance(located.data, dict):
        return None
    cut = _Cut(located.data)
    stood_in: set[tuple[str | int, ...]] = set()
    for _ in range(ROUNDS):
        targets = set()
        for e in err.errors():
            loc = _loc(e)
            if e["type"] == "extra_forbidden" and len(loc) > 0:
                targets.add(loc)  # an unknown field: without it, nothing else changes
            elif loc and loc not in stood_in and _stand_in(cut, loc, e):
                stood_in.add(loc)  # a value the schema takes, in place of the refused or missing one
            elif (target := cut.target(loc, e["type"] == "missing" or loc in stood_in)) is not None:
                targets.add(target)
            else:
                return None
        # Outermost only (a cut entry takes its fields along), deepest and last first: cutting an
        # entry does not move the ones still to be cut.
        outer = [t for t in targets if not any(o != t and t[:len(o)] == o for o in targets)]
        for target in sorted(outer, key=lambda t: [(1, p, "") if isinstance(p, int) else (0, 0, p) for p in t],
                             reverse=True):
            if not cut.cut(target):
                return None
        try:
            return ItemDefinition.model_validate(cut.data), _Mapped(located, cut), cut
        except ValidationError as again:
            err = again
    return None


def _stand_in(cut: _Cut, loc: tuple[str | int, ...], error: Any) -> bool:
    """Put a value the schema takes where ``loc``'s was refused or missing (already reported):
    the first allowed one of a choice, else a placeholder no check can mistake for a real name.
    The entry's own name joins the cut ones: what the checker says of it may follow from the
    stand-in (a state made not final by one has no exit)."""
    parent: Any = cut.data
    entry: Any = None
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
        if isinstance(part, int):
            entry = parent
    if not isinstance(parent, dict) or not isinstance(loc[-1], str):
        return False
    kind = error["type"]
    if kind == "literal_error" and (m := _QUOTED.search(str(error.get("ctx", {}).get("expected", "")))):
        parent[loc[-1]] = m.group(1)
    elif kind.startswith(("int_", "greater_than", "less_than")):
        parent[loc[-1]] = 1
    elif kind == "missing" or kind.startswith("string_"):
        parent[loc[-1]] = STAND_IN
    elif kind.startswith("bool_"):
        parent[loc[-1]] = False
    else:
        return False
    if isinstance(entry, dict):
        cut.names |= {v for k, v in entry.items() if k in ("id", "trigger") and isinstance(v, str)}
    return True


def follows_from_cut(message: str, cut: _Cut) -> bool:
    if cut.entries and any(c in message for c in _CONSEQUENCES):
        return True
    return any(name in cut.names or STAND_IN in name for name in _QUOTED.findall(message))
