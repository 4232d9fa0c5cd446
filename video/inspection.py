"""远程踏勘: the inspector's checklist decides the result; the engine fires the item's transition."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.actors import Actor
from engine.advance import advance, load_case
from engine.errors import Forbidden, InvalidInput
from engine.extensions import VIDEO_KINDS
from storage.video_tables import T_ROOM
from video import rooms


@VIDEO_KINDS.register("inspection", "远程踏勘", checklist=True)
def checklist_of(session: Session, number: str) -> list[dict[str, str]]:
    state = rooms.state_def(session, load_case(session, number))
    return [{"id": e.id, "label": e.label} for e in state.checklist]


def submit(session: Session, room_id: str, actor: Actor, results: dict[str, bool],
           notes: dict[str, str], comment: str | None) -> dict[str, Any]:
    """Validate the whole checklist, then fire ``<kind>_passed`` or ``<kind>_failed``.

    Every item must be answered; a failed inspection needs a reason (the item's own
    ``comment_given`` guard says so too, the check here only names the field earlier).
    """
    room = rooms.admit_for_action(session, room_id)
    if not VIDEO_KINDS[room["kind"]].meta.get("checklist"):
        raise InvalidInput("room", "只有远程踏勘会议室可以提交踏勘清单")
    if actor.id is None:
        raise Forbidden("踏勘结果须由工作人员提交", missing=["role:inspector|reviewer"])
    entries = checklist_of(session, room["number"])
    ids = [e["id"] for e in entries]
    unknown = sorted(set(results) - set(ids))
    if unknown:
        raise InvalidInput(f"results.{unknown[0]}", "清单中没有此项")
    missing = [i for i in ids if i not in results]
    if missing:
        raise InvalidInput(f"results.{missing[0]}", "踏勘清单每一项都须填写")
    passed = all(results[i] for i in ids)
    reason = (comment or "").strip()
    if not passed and not reason:
        raise InvalidInput("comment", "踏勘不通过须填写原因")
    filled = [{**e, "ok": bool(results[e["id"]]), "note": (notes.get(e["id"]) or "").strip() or None}
              for e in entries]
    record = {"room": room_id, "result": "passed" if passed else "failed", "items": filled}
    trigger = f"{room['kind']}_{'passed' if passed else 'failed'}"
    case = advance(session, room["number"], trigger, actor,
                   {"comment": reason or None, "data": {"checklist": record}})
    session.execute(sa.update(T_ROOM).where(T_ROOM.c.id == room_id).values(checklist=record))
    return {"number": case["number"], "state": case["state"], "version": case["version"],
            "trigger": trigger, "checklist": record}
