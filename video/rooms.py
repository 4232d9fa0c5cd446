"""The database side of a video step: open, join, leave, close, and their history events.

A room belongs to a case and the state the case was in when the room opened. The case itself
only changes through the engine (``append_event`` for history, ``advance`` for transitions).
A 视频帮办 room (``video.help``) has no case: it admits only its booth and the clerks of the
booth's supervising counter, and its events go to the room's own log instead of a history.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine import catalog
from engine.actors import SYSTEM, Actor
from engine.advance import append_event, load_case, new_job, require_holder
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.extensions import VIDEO_KINDS
from engine.statements import INSERT_OUTBOX
from states.schema import State
from storage.rows import CaseRow
from storage.tables import Clerk, Counter
from storage.video_tables import T_PART, T_ROOM, T_ROOM_EVENT, VideoRecording
from video import backends
from video.kinds import ADHOC_KIND
from video.links import ROLES, JoinClaim

RECORDING_JOB = "janus_recordings"  # flows/recording_janus.py
CLERK_ROLES = {"clerk", "reviewer", "approver", "inspector"}


def _room(session: Session, room_id: str) -> dict[str, Any]:
    row = session.execute(sa.select(T_ROOM).where(T_ROOM.c.id == room_id)).mappings().first()
    if row is None:
        raise NotFound(f"会议室 {room_id} 不存在")
    return dict(row)


def describe_row(session: Session, room_id: str) -> dict[str, Any]:
    return _room(session, room_id)


def is_help(room: dict[str, Any]) -> bool:
    return room["case_id"] is None


def _event(session: Session, room: dict[str, Any], at: Any, kind: str, actor: Actor, data: dict[str, Any],
           comment: str | None = None) -> None:
    """Into the case's history, or for a room without a case into its own log."""
    if not is_help(room):
        append_event(session, load_case(session, room["number"]), None, at, kind, actor, data, comment)
        return
    session.execute(sa.insert(T_ROOM_EVENT).values(
        room_id=room["id"], at=at, kind=kind, actor_id=actor.id, actor_name=actor.name,
        data={**data, "comment": comment} if comment else data))


def require_help_side(room: dict[str, Any], clerk: Actor) -> None:
    """A help room's two sides: the booth that called, and the clerks of its supervising counter."""
    if clerk.id != room["opened_by"] and clerk.counter_id != room["counter_id"]:
        raise Forbidden(f"「{clerk.name}」不是该自助终端的值守窗口工作人员, 不能接入视频帮办",
                        missing=["counter"])


def state_def(session: Session, case: CaseRow) -> State:
    return catalog.compiled(session, case["item_version_id"]).table[case["state"]].state


def clerk_actor(session: Session, clerk_id: int) -> Actor:
    row = session.execute(
        sa.select(Clerk.id, Clerk.name, Clerk.counter_id, Clerk.roles, Clerk.active, Counter.region_code,
                  Counter.name.label("counter_name"))
        .outerjoin(Counter, Counter.id == Clerk.counter_id).where(Clerk.id == clerk_id)
    ).first()
    if row is None or not row.active:
        raise Forbidden(f"工作人员 #{clerk_id} 不存在或已停用", missing=["clerk"])
    return Actor(row.id, row.name, row.counter_id, row.region_code, frozenset(row.roles.split(",")), row.counter_name)


def participant_actor(session: Session, role: str, name: str, clerk_id: int | None) -> Actor:
    """Clerks act as themselves; applicants and experts are named in history, with no powers."""
    if clerk_id is not None:
        return clerk_actor(session, clerk_id)
    return Actor(None, f"{name}({ROLES.get(role, role)})", None, None, frozenset({f"video:{role}"}))


def _require_clerk(session: Session, case: CaseRow, actor: Actor) -> None:
    if not actor.roles & CLERK_ROLES:
        raise Forbidden("只有窗口工作人员可以发起视频环节", missing=["role:clerk|reviewer|approver|inspector"])
    require_holder(session, case, actor)


def open_room(session: Session, number: str, actor: Actor, kind: str | None) -> dict[str, Any]:
    """Open (or return the already open) room of the case's current state.

    A state that declares ``video:`` opens that kind; any other state allows only an ad hoc
    consultation (临时会商).
    """
    case = load_case(session, number)
    _require_clerk(session, case, actor)
    state = state_def(session, case)
    if state.final:
        raise InvalidInput("number", "办件已办结, 不能发起视频环节")
    declared = state.video
    if kind is not None and kind not in VIDEO_KINDS:
        raise InvalidInput("kind", f"须为 {' / '.join(VIDEO_KINDS.labels())}")
    if declared is None and kind not in (None, ADHOC_KIND):
        raise InvalidInput("kind", f"状态「{state.label}」未声明视频环节, 只能发起临时会商({ADHOC_KIND})")
    if declared is not None and kind not in (None, declared):
        raise InvalidInput("kind", f"状态「{state.label}」声明的视频环节是 {declared}")
    existing = session.execute(
        sa.select(T_ROOM).where(T_ROOM.c.case_id == case["id"], T_ROOM.c.state == case["state"],
                                T_ROOM.c.status == "open")
    ).mappings().first()
    if existing is not None:
        return dict(existing)
    at = now()
    row = {"id": secrets.token_hex(8), "case_id": case["id"], "number": number,
           "state": case["state"], "kind": declared or ADHOC_KIND, "adhoc": declared is None,
           "status": "open", "opened_by": actor.id, "counter_id": actor.counter_id,
           "opened_at": at, "closed_at": None, "close_reason": None, "checklist": None}
    session.execute(sa.insert(T_ROOM).values(**row))
    append_event(session, case, None, at, "video_open", actor,
                 {"room": row["id"], "kind": row["kind"], "state": row["state"], "adhoc": row["adhoc"]})
    return row


def room_for_clerk(session: Session, room_id: str, actor: Actor) -> dict[str, Any]:
    row = _room(session, room_id)
    if is_help(row):
        require_help_side(row, actor)
        return row
    _require_clerk(session, load_case(session, row["number"]), actor)
    return row


def check_link_request(session: Session, room: dict[str, Any], role: str,
                       clerk_id: int | None, actor: Actor) -> int | None:
    """Who a new link is for: clerk links bind to a clerk (the issuer by default)."""
    if room["status"] != "open":
        raise Forbidden("会议室已关闭", missing=["room_open"])
    if role not in ROLES:
        raise InvalidInput("role", f"须为 {' / '.join(ROLES)}")
    if is_help(room):  # the booth has its own link (video.help); others only answer for the counter
        clerk = clerk_actor(session, clerk_id) if clerk_id is not None else actor
        if role != "clerk" or clerk.counter_id != room["counter_id"]:
            raise Forbidden("视频帮办只在自助终端与值守窗口工作人员之间进行, 不能邀请其他参会者",
                            missing=["counter"])
        return clerk.id
    if role == "clerk" and clerk_id is None:
        return actor.id
    if role == "applicant" and clerk_id is not None:
        raise InvalidInput("clerk_id", "申请人链接不能绑定工作人员")
    if clerk_id is not None:
        require_case_clerk(load_case(session, room["number"]), clerk_actor(session, clerk_id))
    return clerk_id


def require_case_clerk(case: CaseRow, clerk: Actor) -> None:
    """A link bound to a clerk lets them act in the room as themselves (captures, the checklist):
    only clerks of the counters the case is routed through — that hold or held it, the same
    counters that may read it (engine.access) — may be bound. Others join as guests (expert)."""
    if clerk.counter_id is None or clerk.counter_id not in case["parties"].values():
        raise Forbidden(f"工作人员「{clerk.name}」所属窗口未办理过该办件, 不能为其签发工作人员入会链接; "
                        "如需其参会, 请以专家身份邀请", missing=["counter"])


def admit(session: Session, claim: JoinClaim) -> dict[str, Any]:
    """A link is valid; may its holder enter now? Closes the room if its case has moved on."""
    row = _room(session, claim.room_id)
    if row["number"] != claim.number:
        raise Forbidden("入会链接不属于此办件", missing=["join_link"])
    if row["status"] != "open":
        raise Forbidden("会议室已关闭", missing=["room_open"])
    if is_help(row):
        if claim.clerk_id is None:  # every link of a help room names its side
            raise Forbidden("视频帮办只在自助终端与值守窗口之间进行", missing=["counter"])
        require_help_side(row, clerk_actor(session, claim.clerk_id))
        return row
    case = load_case(session, row["number"])
    if case["state"] != row["state"]:
        # The caller closes the room in a transaction of its own (this one rolls back).
        raise Forbidden("办件已离开该视频环节所在的状态, 会议室已关闭", missing=["room_open"],
                        reason="state_left")
    if claim.clerk_id is not None:  # also refuses links signed before issuing checked it
        require_case_clerk(case, clerk_actor(session, claim.clerk_id))
    return row


def admit_for_action(session: Session, room_id: str) -> dict[str, Any]:
    """An action inside the room (capture, checklist) needs the room open and its case in place."""
    row = _room(session, room_id)
    if row["status"] != "open":
        raise Forbidden("会议室已关闭", missing=["room_open"])
    if not is_help(row) and load_case(session, row["number"])["state"] != row["state"]:
        raise Forbidden("办件已离开该视频环节所在的状态", missing=["room_open"])
    return row


def record_join(session: Session, room: dict[str, Any], claim: JoinClaim) -> tuple[str, Actor]:
    actor = participant_actor(session, claim.role, claim.name, claim.clerk_id)
    pid = secrets.token_hex(8)
    at = now()
    session.execute(sa.insert(T_PART).values(
        id=pid, room_id=room["id"], role=claim.role, name=claim.name, clerk_id=claim.clerk_id,
        joined_at=at, left_at=None))
    _event(session, room, at, "video_join", actor, {"room": room["id"], "participant": pid, "role": claim.role})
    return pid, actor


def record_leave(session: Session, room_id: str, pid: str, actor: Actor, reason: str) -> None:
    at = now()
    done = session.execute(sa.update(T_PART).where(T_PART.c.id == pid, T_PART.c.left_at.is_(None))
                           .values(left_at=at)).rowcount
    if done:
        _event(session, _room(session, room_id), at, "video_leave", actor,
               {"room": room_id, "participant": pid, "reason": reason})


def close(session: Session, room_id: str, reason: str, actor: Actor | None = None) -> bool:
    """Close once; True if this call closed it. ``reason``: ended | state_left | idle."""
    at = now()
    done = session.execute(sa.update(T_ROOM).where(T_ROOM.c.id == room_id, T_ROOM.c.status == "open")
                           .values(status="closed", closed_at=at, close_reason=reason)).rowcount
    if not done:
        return False
    room = _room(session, room_id)
    _event(session, room, at, "video_close", actor or SYSTEM, {"room": room_id, "reason": reason})
    if is_help(room):
        return True  # nothing recorded: no case to keep recordings as evidence of
    case = load_case(session, room["number"])
    if backends.selected() == "janus":
        # Janus recorded every publisher: the conversion is queued with the close (one
        # transaction), so a room closed is a room whose recordings will be stored. It runs where
        # Janus's disk is (the video queue: the serving process, or a worker on Janus's machine),
        # not on the counter's regional pool, whose workers do not have the ``.mjr`` files.
        counter = room["counter_id"] or case["competent_counter_id"]
        INSERT_OUTBOX.execute(session, new_job(case, RECORDING_JOB, get_settings().video_job_queue,
                                               counter, at, {"number": room["number"], "room": room_id}))
    return True


def still_valid(session: Session, room_id: str) -> str | None:
    """None while the room may stay open, else the reason it must close."""
    row = _room(session, room_id)
    if row["status"] != "open":
        return "closed"
    if not is_help(row) and load_case(session, row["number"])["state"] != row["state"]:
        return "state_left"
    return None


def log(session: Session, room_id: str, kind: str, actor: Actor, data: dict[str, Any],
        comment: str | None = None) -> None:
    _event(session, _room(session, room_id), now(), kind, actor, {"room": room_id, **data}, comment)


def materials(session: Session, number: str) -> list[dict[str, str]]:
    if not number:  # a room without a case (视频帮办) has no materials to file into
        return []
    case = load_case(session, number)
    return [{"id": m.id, "name": m.name}
            for m in catalog.compiled(session, case["item_version_id"]).definition.materials]


def describe(session: Session, room_id: str) -> dict[str, Any]:

    row = _room(session, room_id)
    parts = session.execute(sa.select(T_PART).where(T_PART.c.room_id == room_id)
                            .order_by(T_PART.c.joined_at)).mappings().all()
    recs = session.execute(sa.select(VideoRecording.__table__)
                           .where(VideoRecording.__table__.c.room_id == room_id)).mappings().all()
    # Where a recording is stored stays inside: it is read through the case's evidence.
    hidden = {"bucket", "key"}
    # A case room's description (a help room's booth is video.help's to show).
    inner = {"case_id", "booth_id"}
    return {**{k: v for k, v in row.items() if k not in inner}, "participants": [dict(p) for p in parts],
            "recordings": [{k: v for k, v in r.items() if k not in hidden} for r in recs]}


def rooms_of_case(session: Session, number: str) -> list[dict[str, Any]]:
    ids = session.execute(sa.select(T_ROOM.c.id).where(T_ROOM.c.number == number)
                          .order_by(T_ROOM.c.opened_at)).scalars().all()
    return [describe(session, i) for i in ids]


def idle_rooms(session: Session, cutoff: Any) -> list[str]:
    """Open rooms opened before ``cutoff`` with nobody in them since (whichever process hosts them)."""
    busy = sa.select(T_PART.c.room_id).where(
        sa.or_(T_PART.c.left_at.is_(None), T_PART.c.left_at > cutoff))
    return list(session.execute(
        sa.select(T_ROOM.c.id).where(T_ROOM.c.status == "open", T_ROOM.c.opened_at < cutoff,
                                     T_ROOM.c.id.not_in(busy))).scalars())
