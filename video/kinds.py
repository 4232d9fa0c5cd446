"""The video steps a state may declare (``video:``), each with its zh-CN label.

A step's implementation gives its room's checklist: 远程踏勘 carries the state's checklist
(registered in ``video.inspection``, where the inspector's answers are handled); the steps below
carry none. 远程会商 is also the ad hoc step any open state may start.
"""

from __future__ import annotations

from sqlmodel import Session

from engine.extensions import VIDEO_KINDS

ADHOC_KIND = "consultation"
# 视频帮办: a booth calling its supervising counter, before any case; not a step a state declares,
# so not registered among VIDEO_KINDS (video.help opens it).
HELP_KIND = "help"
HELP_LABEL = "视频帮办"


def no_checklist(session: Session, number: str) -> list[dict[str, str]]:
    return []


VIDEO_KINDS.add(ADHOC_KIND, "远程会商", no_checklist)
VIDEO_KINDS.add("guidance", "远程指导办件", no_checklist)


def checklist(session: Session, kind: str, number: str) -> list[dict[str, str]]:
    """The checklist a room of this step shows (empty for steps without one)."""
    if kind == HELP_KIND:
        return []
    return VIDEO_KINDS[kind].impl(session, number)


def label(kind: str) -> str:
    if kind == HELP_KIND:
        return HELP_LABEL
    entry = VIDEO_KINDS.get(kind)
    return entry.label if entry else kind
