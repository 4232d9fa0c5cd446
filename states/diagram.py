"""State diagrams of an item: Mermaid text for the API and docs, SVG through Graphviz ``dot``."""

from __future__ import annotations

import shutil
import subprocess

from states.defaults import drawn
from states.schema import ItemDefinition

# The default 撤回 and 退回 (states.defaults) are left out of the drawing; the title says so.
DEFAULTS_NOTE = "作出决定前各环节可撤回、可退回上一环节, 图中略"


def _mid(name: str) -> str:
    return name.replace(".", "__")


def _esc(text: str) -> str:
    return text.replace('"', "'").replace(":", "：")


def to_mermaid(d: ItemDefinition) -> str:
    states, transitions = drawn(d)
    lines = ["stateDiagram-v2", f"    %% {d.code} v{d.version} {d.name} ({DEFAULTS_NOTE})",
             f"    [*] --> {d.states[0].id}"]
    for s in states:
        lines.append(f"    {s.id}: {_esc(s.label)}")
        if s.parallel:
            lines.append(f"    state {s.id} {{")
            for i, b in enumerate(s.parallel):
                if i:
                    lines.append("        --")
                lines.append(f"        [*] --> {_mid(f'{s.id}.{b.id}.{b.states[0].id}')}")
                for sub in b.states:
                    sid = _mid(f"{s.id}.{b.id}.{sub.id}")
                    lines.append(f"        {sid}: {_esc(b.label)}·{_esc(sub.label)}")
                    if sub.final:
                        lines.append(f"        {sid} --> [*]")
            lines.append("    }")
        if s.final:
            lines.append(f"    {s.id} --> [*]")
    for t in transitions:
        for src in t.source:
            lines.append(f"    {_mid(src)} --> {_mid(t.dest)}: {_esc(t.label)}")
    return "\n".join(lines) + "\n"


def to_dot(d: ItemDefinition) -> str:
    out = ["digraph item {", '  rankdir=LR; node [shape=box, style=rounded, fontname="Noto Sans CJK SC"];',
           '  edge [fontname="Noto Sans CJK SC", fontsize=10];',
           f'  label="{_esc(d.name)} ({d.code} 第 {d.version} 版) · {DEFAULTS_NOTE}"; labelloc=t;',
           '  __start [shape=point];', f"  __start -> {_mid(d.states[0].id)};"]
    states, transitions = drawn(d)
    for s in states:
        if s.parallel:
            out.append(f'  subgraph cluster_{s.id} {{ label="{_esc(s.label)}"; style=dashed;')
            out.append(f'    {_mid(s.id)} [shape=point, label=""];')
            for b in s.parallel:
                out.append(f'    subgraph cluster_{s.id}_{b.id} {{ label="{_esc(b.label)}";')
                for sub in b.states:
                    shape = ", peripheries=2" if sub.final else ""
                    out.append(f'      {_mid(f"{s.id}.{b.id}.{sub.id}")} [label="{_esc(sub.label)}"{shape}];')
                out.append("    }")
            out.append("  }")
        else:
            shape = ", peripheries=2" if s.final else ""
            out.append(f'  {_mid(s.id)} [label="{_esc(s.label)}"{shape}];')
    for t in transitions:
        for src in t.source:
            style = ", style=dashed" if t.auto else ""
            out.append(f'  {_mid(src)} -> {_mid(t.dest)} [label="{_esc(t.label)}"{style}];')
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(d: ItemDefinition) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("需要 Graphviz 的 dot 命令来生成 SVG (apt-get install graphviz)")
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(d).encode(), capture_output=True,
                          check=True, timeout=30)
    return done.stdout.decode()
