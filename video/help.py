"""视频帮办: a self-service booth calls a clerk of its supervising counter, before any case exists.

The booth (its own signed-in account) opens a room of kind ``help`` with no case: the room names
the booth and the supervising counter, whose clerks see it as a waiting call (/ui/help) and answer
through the usual join link. Only those two sides are admitted (``rooms.admit``); the room's
events go to its own log (``video_room_events``), as there is no case history to write into, and
nothing is recorded (recordings are case evidence).
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from engine import directory, kiosk
from engine.actors import Actor
from engine.errors import Forbidden
from storage.video_tables import T_PART, T_ROOM, T_ROOM_EVENT
from video import links, rooms
from video.kinds import HELP_KIND


def open_call(session: Session, actor: Actor) -> tuple[dict[str, Any], str]:
    """The booth's open call (a new one if it has none) and the booth's join link to it."""
    b = kiosk.booth(session, actor)
    row = session.execute(
        sa.select(T_ROOM).where(T_ROOM.c.booth_id == b.id, T_ROOM.c.kind == HELP_KIND, T_ROOM.c.status == "open")
        .order_by(T_ROOM.c.opened_at.desc())
    ).mappings().first()
    if row is None:
        at = now()
        row = {"id": secrets.token_hex(8), "case_id": None, "number": "", "state": "", "kind": HELP_KIND,
               "adhoc": False, "status": "open", "opened_by": actor.id, "counter_id": b.supervisor_id,
               "booth_id": b.id, "opened_at": at, "closed_at": None, "close_reason": None, "checklist": None}
        session.execute(sa.insert(T_ROOM).values(**row))
        session.execute(sa.insert(T_ROOM_EVENT).values(
            room_id=row["id"], at=at, kind="video_open", actor_id=actor.id, actor_name=b.name,
            data={"room": row["id"], "kind": HELP_KIND, "booth": b.id, "counter": b.supervisor_id}))
    # The person at the booth is the applicant side; the link is bound to the booth's account.
    token, _ = links.issue("", row["id"], "applicant", b.name, actor.id)
    return dict(row), token


def _require_counter_clerk(actor: Actor) -> str:
    if not actor.roles & rooms.CLERK_ROLES or actor.counter_id is None:
        raise Forbidden("只有窗口工作人员可以接听视频帮办", missing=["role:clerk"])
    return actor.counter_id


def waiting(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The open calls from the booths this clerk's counter supervises, oldest first."""
    counter = _require_counter_clerk(actor)
    rows = session.execute(
        sa.select(T_ROOM).where(T_ROOM.c.counter_id == counter, T_ROOM.c.kind == HELP_KIND,
                                T_ROOM.c.case_id.is_(None), T_ROOM.c.status == "open")
        .order_by(T_ROOM.c.opened_at)
    ).mappings().all()
    present: dict[str, set[str]] = {}
    if rows:
        for room_id, role in session.execute(
                sa.select(T_PART.c.room_id, T_PART.c.role).where(
                    T_PART.c.room_id.in_([r["id"] for r in rows]), T_PART.c.left_at.is_(None))):
            present.setdefault(room_id, set()).add(role)
    out = []
    for r in rows:
        booth = directory.counter(session, r["booth_id"]) if r["booth_id"] else None
        here = present.get(r["id"], set())
        out.append({"id": r["id"], "booth": booth.name if booth else "自助终端", "opened_at": r["opened_at"],
                    "booth_in": "applicant" in here, "answered": "clerk" in here})
    return out


def answer(session: Session, room_id: str, actor: Actor) -> str:
    """A clerk of the supervising counter answers: their clerk link to the call."""
    _require_counter_clerk(actor)
    room = rooms.describe_row(session, room_id)
    if room["kind"] != HELP_KIND or not rooms.is_help(room):
        raise Forbidden("这不是视频帮办呼叫", missing=["room_kind"])
    clerk_id = rooms.check_link_request(session, room, "clerk", None, actor)
    token, _ = links.issue("", room_id, "clerk", actor.name, clerk_id)
    return token


def room_log(session: Session, room_id: str) -> list[dict[str, Any]]:
    """The call's own log, in order."""
    return [dict(r) for r in session.execute(
        sa.select(T_ROOM_EVENT).where(T_ROOM_EVENT.c.room_id == room_id).order_by(T_ROOM_EVENT.c.id)).mappings()]
