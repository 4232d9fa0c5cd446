"""The registries of what item definitions may name, and the one place their modules are listed.

- ``GUARDS``: a guard answers why a transition is closed (zh-CN) or None; ``engine.guards``.
- ``JOBS``: an outbox job's handler, with the triggers it fires when done (``follow_ups``);
  implemented in ``flows``.
- ``VIDEO_KINDS``: a video step; its implementation gives the room's checklist (``video``).
- ``DOCUMENTS``: a written notice (文书); its implementation gives the facts its template states,
  its meta when it is issued and by which unit (``engine.document_kinds``).

The engine enqueues jobs and opens video steps by name but never imports ``flows`` or ``video``:
their modules register themselves when loaded, and ``load()`` loads every module in ``MODULES``
by name. A module that declares an extension and is missing here fails the registry test.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

from core.registry import Registry, entry_problems
from states.vocabulary import Vocabulary

GUARDS: Registry[Callable[..., str | None]] = Registry("守卫条件")
JOBS: Registry[Callable[..., dict[str, Any]]] = Registry("自动任务")
VIDEO_KINDS: Registry[Callable[..., list[dict[str, str]]]] = Registry("视频环节")
DOCUMENTS: Registry[Callable[..., dict[str, Any]]] = Registry("文书")

REGISTRIES = (GUARDS, JOBS, VIDEO_KINDS, DOCUMENTS)

# Every module that declares a guard, a job, a video step or a document.
MODULES = (
    "engine.document_kinds",
    "engine.guards",
    "flows.autoreview",
    "flows.certificate",
    "flows.documents",
    "flows.handoff",
    "flows.mail",
    "flows.notify",
    "flows.recording_janus",
    "flows.webhooks",
    "video.inspection",
    "video.kinds",
)


@cache
def load() -> None:
    """Import every extension module once (their decorators fill the registries)."""
    for name in MODULES:
        importlib.import_module(name)


def vocabulary() -> Vocabulary:
    load()
    return Vocabulary(
        guards=GUARDS.labels(),
        jobs=JOBS.labels(),
        follow_ups={e.name: tuple(e.meta.get("follow_ups", ())) for e in JOBS},
        video_kinds=VIDEO_KINDS.labels(),
        checklist_kinds=frozenset(e.name for e in VIDEO_KINDS if e.meta.get("checklist")),
    )


def problems() -> list[str]:
    """Every registry entry must have its implementation and label (the completeness test)."""
    load()
    return [p for reg in REGISTRIES for e in reg for p in entry_problems(reg.kind, e)]
