"""History anchors: signed checkpoints of every case's chain head, kept outside the database.

The hash chain (``engine.history``) proves that events agree with each other, not that they are
the events that happened: whoever can write the database can edit one and recompute every hash
after it. An anchor records, for every case, its number, version and newest hash, with the time
and the previous anchor's digest, signed as a whole, and is written to the evidence store under
object lock (retention: ``evidence_retention_days``), where the database's writers cannot reach.
``tongban audit verify`` then checks every chain against the latest anchor: a case gone is
deleted, a lower version truncated, a chain that no longer passes through the anchored hash at
the anchored version rewritten. Events after the anchor are fine.

Ed25519 rather than HMAC: a verifier needs only the public key (``anchor_public_key``), so an
auditor, a supervising authority or a second machine can check anchors without being able to
make one; with HMAC whoever can check can also forge. The private key is the installation's
``anchor-key`` in the data directory (or ``anchor_key``), never in the database.

Anchors are written by the deadline sweep (hourly, in the embedded server and the Prefect
deployment alike) when anything changed, and by ``tongban audit anchor``. A writer never
launders a tampered case: a case that disagrees with the previous anchor keeps its anchored head
in the next one (and is reported), so the evidence outlives any number of later anchors.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import logging
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlmodel import Session

from core.clock import now
from core.install_secrets import install_key
from core.settings import get_settings
from engine.history import Anchored, Break, against_anchor
from storage.object_factory import get_store
from storage.objects import ObjectInfo, ObjectMissing, ObjectStore, StoreUnavailable, bucket_for
from storage.tables import T_CASE, T_HIST

log = logging.getLogger(__name__)

FORMAT = b"tongban-anchor/1"
CONTENT_TYPE = "application/vnd.tongban.anchor+gzip"
MAX_STORED_BYTES = 256 * 1024**2  # a refused object bigger than this is not even read
MAX_ANCHOR_BYTES = 1024**3  # nor inflated beyond this (a forged gzip bomb)
# Objects listed within this much of the newest valid one are read too: store clocks have coarse
# grains, and two writers may anchor within the same second.
TIE_WINDOW = timedelta(seconds=5)


class AnchorRefused(Exception):
    """An object in the anchor bucket that is not a genuine anchor of this installation."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    at: datetime
    prev: str | None  # digest of the previous anchor's object
    cases: dict[str, tuple[int, str | None]]  # number → (version, newest hash)
    bucket: str
    key: str

    @property
    def sha256(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Refused:
    bucket: str
    key: str
    reason: str


@dataclass
class Written:
    anchor: Anchor | None  # None: nothing changed since ``previous``
    previous: Anchor | None
    carried: list[Break] = field(default_factory=list)  # disagree with ``previous``: its heads kept
    refused: list[Refused] = field(default_factory=list)


# --- keys ------------------------------------------------------------------------------------


def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(install_key("anchor-key", get_settings().anchor_key))


def public_key() -> Ed25519PublicKey:
    """The configured public key when given (a verifying machine needs no private key), else ours."""
    configured = get_settings().anchor_public_key.strip()
    if configured:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(configured))
    return signing_key().public_key()


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def bucket(prefix: str | None = None) -> str:
    """One evidence bucket of anchors for the installation (regions share the history)."""
    return bucket_for("evidence", "anchors", prefix=prefix or get_settings().bucket_prefix)


# --- the object ------------------------------------------------------------------------------


def encode(payload: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """``FORMAT <public key> <signature>\\n<payload JSON>``, gzipped. The signature covers the
    payload's bytes as stored, so verifying never depends on re-serialising JSON the same way."""
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(FORMAT + b"\n" + body)
    head = b" ".join((FORMAT, public_hex(key.public_key()).encode(), base64.b64encode(signature)))
    return gzip.compress(head + b"\n" + body, mtime=0)


def decode(data: bytes, public: Ed25519PublicKey, bucket_name: str, key: str) -> Anchor:
    if hashlib.sha256(data).hexdigest() != key.rsplit("/", 1)[-1]:
        raise AnchorRefused("内容与其键 (内容哈希) 不符: 对象被覆盖或损坏")
    try:
        inflater = zlib.decompressobj(wbits=31)
        raw = inflater.decompress(data, MAX_ANCHOR_BYTES)
    except zlib.error:
        raise AnchorRefused("不是锚点 (无法解压)") from None
    if inflater.unconsumed_tail:
        raise AnchorRefused("解压后过大, 不是锚点")
    head, _, body = raw.partition(b"\n")
    parts = head.split(b" ")
    if len(parts) != 3 or parts[0] != FORMAT:
        raise AnchorRefused("不是锚点 (格式不符)")
    try:
        public.verify(base64.b64decode(parts[2], validate=True), FORMAT + b"\n" + body)
    except (InvalidSignature, binascii.Error, ValueError):
        claimed = parts[1].decode(errors="replace")[:16]
        raise AnchorRefused(f"签名无效: 不是用本机构的锚点密钥签发的 (自称公钥 {claimed}…)") from None
    p = json.loads(body)
    return Anchor(seq=int(p["seq"]), at=datetime.fromisoformat(p["at"]), prev=p.get("prev"),
                  cases={n: (int(v), h) for n, v, h in p["cases"]}, bucket=bucket_name, key=key)


def load(store: ObjectStore, info: ObjectInfo, public: Ed25519PublicKey) -> Anchor:
    if info.size > MAX_STORED_BYTES:
        raise AnchorRefused(f"对象过大 ({info.size} 字节), 不是锚点")
    data = b"".join(store.get(info.bucket, info.key))
    return decode(data, public, info.bucket, info.key)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest(store: ObjectStore, public: Ed25519PublicKey,
           bucket_name: str | None = None) -> tuple[Anchor | None, list[Refused]]:
    """The newest genuine anchor, and every object newer than it that is not one (a forgery, or
    an anchor signed with another key). The newest by the signed time, among those the store
    lists close to the newest genuine one."""
    b = bucket_name or bucket()
    try:
        listed = sorted(store.list(b), key=lambda o: o.created_at or _EPOCH, reverse=True)
    except ObjectMissing:
        return None, []
    best: Anchor | None = None
    horizon: datetime | None = None
    refused: list[Refused] = []
    for info in listed:
        created = info.created_at or _EPOCH
        if horizon is not None and created < horizon:
            break
        try:
            anchor = load(store, info, public)
        except AnchorRefused as exc:
            refused.append(Refused(b, info.key, str(exc)))
            continue
        if horizon is None:
            horizon = created - TIE_WINDOW
        if best is None or (anchor.at, anchor.seq) > (best.at, best.seq):
            best = anchor
    return best, refused


# --- writing ---------------------------------------------------------------------------------


def heads(session: Session) -> dict[str, tuple[int, str | None]]:
    rows = session.execute(sa.select(T_CASE.c.number, T_CASE.c.version, T_CASE.c.last_hash))
    return {n: (v, h) for n, v, h in rows}


def check_heads(session: Session, anchored: Anchored,
                current: dict[str, tuple[int, str | None]]) -> list[Break]:
    """What the full verify would say against ``anchored``, from the case rows and one event per
    case that moved on: the writer's check before it anchors (the full chains are ``verify``'s)."""
    problems: list[Break] = []
    moved: list[str] = []
    for number, (version, last_hash) in anchored.items():
        cur = current.get(number)
        if cur is None:
            problems.append(Break(number, None, f"办件被删除: 锚点记录了该办件 (版本 {version}), 数据库中已没有",
                                  "deleted"))
        elif cur[0] > version:
            moved.append(number)
        elif (b := against_anchor(number, cur[0], cur[1] if cur[0] == version else None, (version, last_hash))):
            problems.append(b)
    for start in range(0, len(moved), 500):
        chunk = moved[start:start + 500]
        wanted = [(n, anchored[n][0]) for n in chunk]
        found = dict(session.execute(
            sa.select(T_CASE.c.number, T_HIST.c.hash).join(T_HIST, T_HIST.c.case_id == T_CASE.c.id)
            .where(sa.tuple_(T_CASE.c.number, T_HIST.c.seq).in_(wanted))).all())
        for number in chunk:
            if b := against_anchor(number, current[number][0], found.get(number), anchored[number]):
                problems.append(b)
    return sorted(problems, key=lambda b: b.number)


def write(session: Session, store: ObjectStore | None = None, key: Ed25519PrivateKey | None = None,
          *, bucket_name: str | None = None, force: bool = False) -> Written:
    """Anchor every case's head now, unless nothing changed since the latest anchor (``force``:
    anyway). Two writers at once both anchor on the same previous one; both are genuine, and
    the verifier takes the newer."""
    store = store or get_store()
    key = key or signing_key()
    b = bucket_name or bucket()
    previous, refused = latest(store, key.public_key(), b)
    current = heads(session)
    carried: list[Break] = []
    if previous is not None:
        carried = check_heads(session, previous.cases, current)
        for problem in carried:
            current[problem.number] = previous.cases[problem.number]
        if not force and current == previous.cases:
            return Written(None, previous, carried, refused)
    at = now()
    seq = previous.seq + 1 if previous else 1
    payload = {"seq": seq, "at": at.isoformat(), "prev": previous.sha256 if previous else None,
               "cases": [[n, v, h] for n, (v, h) in sorted(current.items())]}
    data = encode(payload, key)
    store.ensure_bucket(b, evidence=True)
    info = store.put(b, io.BytesIO(data), CONTENT_TYPE, max_bytes=len(data),
                     retain_days=get_settings().evidence_retention_days)
    anchor = Anchor(seq=seq, at=at, prev=payload["prev"], cases=current, bucket=b, key=info.key)
    return Written(anchor, previous, carried, refused)


def periodic(engine: sa.Engine) -> dict[str, int]:
    """The sweep's anchor: written when anything changed; a store that is down waits for the next."""
    from storage.db import session_scope

    try:
        with session_scope(engine) as session:
            w = write(session)
    except StoreUnavailable as exc:
        log.error("历史锚点未写入, 对象存储不可用: %s", exc)
        return {"anchor_written": 0, "anchor_problems": 0}
    for problem in w.carried:
        log.error("历史锚点: 办件 %s 与上一锚点不符 (%s): %s", problem.number, problem.kind, problem.reason)
    for r in w.refused:
        log.error("历史锚点: %s/%s 被拒绝: %s", r.bucket, r.key, r.reason)
    return {"anchor_written": int(w.anchor is not None), "anchor_problems": len(w.carried) + len(w.refused)}
