"""An item's diagram as SVG with the case's current state(s) highlighted, cached per version."""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache

from states.compiler import CompiledItem
from states.diagram import to_dot

HIGHLIGHT = 'style="rounded,filled,bold", fillcolor="#ffe08a", color="#c62828", penwidth=2.5'


def _node(name: str) -> str:
    return name.replace(".", "__")


def _label(item: CompiledItem, name: str) -> str:
    """A node's label as states.diagram writes it; none for a parallel state (a point)."""
    state = item.table[name].state
    return "" if state.parallel else f'label="{state.label.replace(chr(34), chr(39))}", '


def active_states(item: CompiledItem, state: str, branches: dict[str, str] | None) -> tuple[str, ...]:
    """The nodes to mark: the state itself, plus each parallel branch's current sub-state."""
    out = [state]
    for b in item.table[state].state.parallel or []:
        if branches and b.id in branches:
            out.append(f"{state}.{b.id}.{branches[b.id]}")
    return tuple(out)


def highlighted_svg(item: CompiledItem, content_hash: str, active: tuple[str, ...]) -> str:
    return _render(content_hash, active, _dot(item, active))


def _dot(item: CompiledItem, active: tuple[str, ...]) -> str:
    # DOT merges attributes of a node declared twice: restyle the active nodes at the end.
    dot = to_dot(item.definition).rstrip().removesuffix("}")
    # The label too: a state the drawing leaves out (the default 撤回's 已撤回) would else be drawn
    # by its bare id once the case is in it.
    marks = "".join(f"  {_node(a)} [{_label(item, a)}{HIGHLIGHT}];\n" for a in active)
    return dot + marks + "}\n"


@lru_cache(maxsize=512)
def _render(content_hash: str, active: tuple[str, ...], dot_source: str) -> str:
    """Keyed by version hash and active states: ``dot`` costs tens of ms, a cache hit nothing."""
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError("需要 Graphviz 的 dot 命令来生成 SVG (apt-get install graphviz)")
    done = subprocess.run([exe, "-Tsvg"], input=dot_source.encode(), capture_output=True,
                          check=True, timeout=30)
    return done.stdout.decode()
