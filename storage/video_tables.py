"""Tables of video steps (云见面): rooms bound to a case and a state, who joined, what was recorded.

A 视频帮办 room (kind ``help``) is opened by a self-service booth before any case exists: it has no
case, number or state, names its booth, and keeps its events in ``video_room_events``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class VideoRoom(SQLModel, table=True):
    """A room lives while its case stays in ``state``; ``status`` open → closed, never reopened.

    A help room has ``case_id`` None and ``number``/``state`` empty; ``counter_id`` is the booth's
    supervising counter (whose clerks answer) and ``booth_id`` the booth."""

    __tablename__ = "video_rooms"
    id: str = Field(primary_key=True, max_length=32)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    number: str = Field(max_length=32, index=True)
    state: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # consultation | inspection | guidance | help
    adhoc: bool = False  # 临时会商: opened in a state that declares no video step
    status: str = Field(default="open", max_length=8, index=True)  # open | closed
    opened_by: int = Field(foreign_key="clerks.id")
    counter_id: str = Field(max_length=64)
    opened_at: datetime = Field(sa_type=UTC_TS)
    closed_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    close_reason: str | None = Field(default=None, max_length=32)
    # 远程踏勘: the filled checklist and its result, kept with the room.
    checklist: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    booth_id: str | None = Field(default=None, max_length=64)  # 视频帮办: the booth that called


class VideoRoomEvent(SQLModel, table=True):
    """The log of a room without a case (视频帮办): what a case room writes into its case history."""

    __tablename__ = "video_room_events"
    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="video_rooms.id", index=True)
    at: datetime = Field(sa_type=UTC_TS)
    kind: str = Field(max_length=32)
    actor_id: int | None = None
    actor_name: str = Field(max_length=200)
    data: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


class VideoParticipant(SQLModel, table=True):
    __tablename__ = "video_participants"
    id: str = Field(primary_key=True, max_length=32)
    room_id: str = Field(foreign_key="video_rooms.id", index=True)
    role: str = Field(max_length=16)  # clerk | applicant | approver | expert
    name: str
    clerk_id: int | None = Field(default=None, foreign_key="clerks.id")
    joined_at: datetime = Field(sa_type=UTC_TS)
    left_at: datetime | None = Field(default=None, sa_type=UTC_TS)


class VideoRecording(SQLModel, table=True):
    """One mp4 (audio + video) per publishing participant, stored as case evidence."""

    __tablename__ = "video_recordings"
    id: int | None = Field(default=None, primary_key=True)
    room_id: str = Field(foreign_key="video_rooms.id", index=True)
    participant_id: str = Field(foreign_key="video_participants.id")
    bucket: str = Field(max_length=64)
    key: str = Field(max_length=80)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=sa.BigInteger)
    duration_s: float
    content_type: str = Field(default="video/mp4", max_length=64)
    started_at: datetime = Field(sa_type=UTC_TS)
    ended_at: datetime = Field(sa_type=UTC_TS)


# Table handles for Core statements (prepared statements and bulk reads), one per table.
T_PART = VideoParticipant.__table__
T_REC = VideoRecording.__table__
T_ROOM = VideoRoom.__table__
T_ROOM_EVENT = VideoRoomEvent.__table__
