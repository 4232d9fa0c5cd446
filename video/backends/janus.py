"""Janus VideoRoom as the media path: a generated configuration, the local process, and its API.

A Tongban room maps to one VideoRoom room, created with the plugin's ``admin_key`` and an
``allowed`` list of per-participant tokens (one per join link), so a join link is the only way
in. Janus forwards RTP without decoding and records every publisher as ``.mjr`` files in the
room's ``rec_dir``; the recording job converts them with ``janus-pp-rec`` (no re-encode).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.install_secrets import install_secret
from core.settings import get_settings


def plugin_dir(root: Path = Path("/usr/lib")) -> Path:
    """Janus's plugins, transports, events and loggers: ``/usr/lib/<multiarch triplet>/janus`` on
    Debian (x86_64-linux-gnu, aarch64-linux-gnu, …), found rather than assumed."""
    found = sorted(p for p in root.glob("*/janus") if (p / "plugins").is_dir())
    return found[0] if found else root / "janus"


LIB = plugin_dir()
_tx = itertools.count(1)


class JanusError(RuntimeError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus {code}: {reason}")
        self.code = code
        self.reason = reason


def admin_key() -> str:
    return install_secret("janus-admin-key", get_settings().janus_admin_key).decode()


def room_number(room_id: str) -> int:
    """VideoRoom rooms are numbered: a stable 53-bit number from the Tongban room id."""
    return int.from_bytes(hashlib.sha256(room_id.encode()).digest()[:6], "big") or 1


def publisher_number(participant_id: str) -> int:
    """The VideoRoom publisher id of a Tongban participant (so recordings name their participant)."""
    return room_number("p:" + participant_id)


def participant_token(number: int, publisher: int, key: str | None = None) -> str:
    """The VideoRoom token of one participant: bound to the room and to the publisher id issued with
    it, derived from the admin key. Any Tongban process can so check, without state, that a page
    joins with its own publisher id (api/routes/video.py); Janus checks the token is allowed."""
    return hashlib.sha256(f"{key or admin_key()}\0token\0{number}\0{publisher}".encode()).hexdigest()[:32]


def room_secret(room_id: str) -> str:
    """The VideoRoom ``secret`` of a Tongban room (edit, allow, destroy): derived from the admin
    key, so every Tongban process and the recording job can manage the room without storing it."""
    return hashlib.sha256(f"{admin_key()}\0room\0{room_id}".encode()).hexdigest()[:32]


def recordings_dir(room_id: str) -> Path:
    """Where Janus writes a room's ``.mjr`` files (Janus runs on this machine: ``tongban serve --janus``)."""
    return get_settings().data_dir / "janus-rec" / room_id


def _disabled(kind: str, keep: str) -> str:
    folder = LIB / kind
    names = sorted(p.name for p in folder.glob("*.so")) if folder.is_dir() else []
    return ",".join(n for n in names if n != keep)


def write_config(folder: Path, *, http_port: int = 8088, ip: str = "127.0.0.1",
                 rtp_ports: tuple[int, int] = (20000, 40000), key: str | None = None,
                 stun: str | None = None, turn: tuple[str, int, str, str] | None = None,
                 enforce_interfaces: str | None = None, public_ip: str | None = None) -> Path:
    """Janus's ``janus.jcfg`` with the VideoRoom plugin and the HTTP transport only.

    ``public_ip`` (default ``TONGBAN_JANUS_PUBLIC_IP``): the address browsers reach Janus at when
    it is behind NAT, written as ``nat_1_1_mapping`` (Janus announces it in its candidates)."""
    folder.mkdir(parents=True, exist_ok=True)
    public_ip = public_ip if public_ip is not None else get_settings().janus_public_ip
    nat = ["nice_debug = false", "full_trickle = true", "ignore_mdns = true"]
    if public_ip:
        nat.append(f'nat_1_1_mapping = "{public_ip}"')
    if stun:
        host, _, port = stun.partition(":")
        nat += [f'stun_server = "{host}"', f"stun_port = {port or 3478}"]
    if turn:
        nat += [f'turn_server = "{turn[0]}"', f"turn_port = {turn[1]}", 'turn_type = "udp"',
                f'turn_user = "{turn[2]}"', f'turn_pwd = "{turn[3]}"']
    if enforce_interfaces:
        nat.append(f'ice_enforce_list = "{enforce_interfaces}"')
    (folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{LIB / 'plugins'}"
    transports_folder = "{LIB / 'transports'}"
    events_folder = "{LIB / 'events'}"
    loggers_folder = "{LIB / 'loggers'}"
    debug_level = 3
    admin_secret = "{secrets.token_hex(16)}"
    protected_folders = []
}}
media: {{
    rtp_port_range = "{rtp_ports[0]}-{rtp_ports[1]}"
}}
nat: {{
    {chr(10).join('    ' + line for line in nat).strip()}
}}
plugins: {{
    disable = "{_disabled('plugins', 'libjanus_videoroom.so')}"
}}
transports: {{
    disable = "{_disabled('transports', 'libjanus_http.so')}"
}}
events: {{
    broadcast = false
    disable = "{_disabled('events', '')}"
}}
loggers: {{
    disable = "{_disabled('loggers', '')}"
}}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        f'general: {{\n    admin_key = "{key or admin_key()}"\n    lock_rtp_forward = true\n}}\n')
    (folder / "janus.transport.http.jcfg").write_text(f"""general: {{
    json = "compact"
    base_path = "/janus"
    http = true
    port = {http_port}
    ip = "{ip}"
    https = false
}}
admin: {{
    admin_base_path = "/admin"
    admin_http = false
}}
""")
    return folder / "janus.jcfg"


@dataclass
class LocalJanus:
    """A Janus process started by Tongban (``tongban serve --janus``, tests, the bench)."""

    process: subprocess.Popen[bytes]
    url: str
    folder: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Janus's own clean exit (^C)
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_local(folder: Path, *, http_port: int = 8088, key: str | None = None,
                timeout: float = 15.0, **config: Any) -> LocalJanus:
    exe = shutil.which("janus")
    if exe is None:
        raise FileNotFoundError("未找到 janus: 请安装 Debian 软件包 janus")
    cfg = write_config(folder, http_port=http_port, key=key, **config)
    log = open(folder / "janus.log", "wb")  # noqa: SIM115 — the process keeps it
    proc = subprocess.Popen([exe, "-C", str(cfg), "-F", str(folder), "-N"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}/janus"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"janus 启动失败: {(folder / 'janus.log').read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url + "/info", timeout=1).status_code == 200:
                return LocalJanus(proc, url, folder)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("janus 未在规定时间内就绪")
        time.sleep(0.1)


class VideoRoomAPI:
    """The Janus HTTP API, one session with one VideoRoom handle (control requests only)."""

    def __init__(self, url: str | None = None, key: str | None = None) -> None:
        self.url = (url or get_settings().janus_url).rstrip("/")
        self.key = key or admin_key()
        self.http = httpx.Client(timeout=10)
        self.session = self._call(self.url, {"janus": "create"})["data"]["id"]
        self.handle = self._call(f"{self.url}/{self.session}",
                                 {"janus": "attach", "plugin": "janus.plugin.videoroom"})["data"]["id"]

    def _call(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(url, json={**body, "transaction": f"tb{next(_tx)}"}).json()
        if answer.get("janus") == "error":
            raise JanusError(answer["error"]["code"], answer["error"]["reason"])
        return answer

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request (create, destroy, allowed, exists, listparticipants…)."""
        answer = self._call(f"{self.url}/{self.session}/{self.handle}", {"janus": "message", "body": body})
        data = answer["plugindata"]["data"]
        if data.get("videoroom") == "event" and "error_code" in data:
            raise JanusError(data["error_code"], data.get("error", ""))
        return data

    def create_room(self, room_id: str, *, rec_dir: Path, tokens: list[str], secret: str,
                    publishers: int | None = None) -> int:
        number = room_number(room_id)
        publishers = publishers or get_settings().janus_publishers
        rec_dir.mkdir(parents=True, exist_ok=True)
        self.request({"request": "create", "admin_key": self.key, "room": number,
                      "description": f"tongban-{room_id}", "secret": secret, "is_private": True,
                      "publishers": publishers, "allowed": tokens, "record": True,
                      "rec_dir": str(rec_dir), "videocodec": "vp8", "audiocodec": "opus",
                      # Evidence: a participant may not switch their own recording off.
                      "lock_record": True, "permanent": False})
        return number

    def allow(self, number: int, secret: str, tokens: list[str]) -> None:
        self.request({"request": "allowed", "room": number, "secret": secret, "action": "add",
                      "allowed": tokens})

    def disallow(self, number: int, secret: str, tokens: list[str]) -> None:
        """Take tokens off the room's ``allowed`` list: Janus refuses them from now on."""
        self.request({"request": "allowed", "room": number, "secret": secret, "action": "remove",
                      "allowed": tokens})

    def kick(self, number: int, secret: str, publisher: int) -> bool:
        """Put a participant out of the room (their publisher handle and its feeds); False if they
        were not in it (never joined Janus, or gone already)."""
        try:
            self.request({"request": "kick", "room": number, "secret": secret, "id": publisher})
        except JanusError as exc:
            if exc.code == 428:  # JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED
                return False
            raise
        return True

    def destroy_room(self, number: int, secret: str) -> None:
        self.request({"request": "destroy", "room": number, "secret": secret, "permanent": False})

    def ensure_room(self, room_id: str, *, rec_dir: Path, publishers: int | None = None) -> int:
        """The room's VideoRoom room, created on first use (another process may have made it)."""
        number = room_number(room_id)
        if self.request({"request": "exists", "room": number}).get("exists"):
            return number
        try:
            return self.create_room(room_id, rec_dir=rec_dir, tokens=[], secret=room_secret(room_id),
                                    publishers=publishers)
        except JanusError as exc:
            if exc.code != 427:  # JANUS_VIDEOROOM_ERROR_ROOM_EXISTS: made meanwhile, fine
                raise
            return number

    def close_room(self, room_id: str) -> bool:
        """Destroy the room if it is still there (its recordings close); False if it was gone."""
        try:
            self.destroy_room(room_number(room_id), room_secret(room_id))
        except JanusError as exc:
            if exc.code == 426:  # JANUS_VIDEOROOM_ERROR_NO_SUCH_ROOM
                return False
            raise
        return True

    def join(self, number: int, token: str | None, display: str, publisher: int | None = None) -> dict[str, Any]:
        """Join as publisher (no media yet): the ``joined`` event, or the refusal as JanusError."""
        body: dict[str, Any] = {"request": "join", "ptype": "publisher", "room": number, "display": display}
        if publisher is not None:
            body["id"] = publisher
        if token is not None:
            body["token"] = token
        self._call(f"{self.url}/{self.session}/{self.handle}", {"janus": "message", "body": body})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            events = self.http.get(f"{self.url}/{self.session}", params={"maxev": 5}, timeout=35).json()
            for ev in events if isinstance(events, list) else [events]:
                data = (ev.get("plugindata") or {}).get("data") or {}
                if "error_code" in data:
                    raise JanusError(data["error_code"], data.get("error", ""))
                if data.get("videoroom") == "joined":
                    return data
        raise TimeoutError("Janus did not answer the join")

    def close(self) -> None:
        try:
            self._call(f"{self.url}/{self.session}", {"janus": "destroy"})
        finally:
            self.http.close()


def publish(api: VideoRoomAPI, offer_sdp: str) -> str:
    """Send a publisher's offer (after ``join``); Janus's SDP answer."""
    api._call(f"{api.url}/{api.session}/{api.handle}",
              {"janus": "message", "body": {"request": "publish", "audio": True, "video": True},
               "jsep": {"type": "offer", "sdp": offer_sdp}})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = api.http.get(f"{api.url}/{api.session}", params={"maxev": 5}, timeout=35).json()
        for ev in events if isinstance(events, list) else [events]:
            data = (ev.get("plugindata") or {}).get("data") or {}
            if "error_code" in data:
                raise JanusError(data["error_code"], data.get("error", ""))
            if ev.get("jsep", {}).get("type") == "answer":
                return str(ev["jsep"]["sdp"])
    raise TimeoutError("Janus did not answer the offer")


@dataclass(frozen=True)
class Converted:
    path: Path
    sha256: str
    size: int
    duration: float
    source: tuple[str, ...]
    publisher: int
    started: float  # unix time the publisher's tracks were opened (from the ``.mjr`` names)


def _lane(src: Any, stream: Any, target: Any) -> Iterator[tuple[float, Any]]:
    """One track's packets as they are, for the muxer: timestamps from zero and strictly rising
    (a sender's RTP clock may jump back; the Ogg that ``janus-pp-rec`` writes then starts below
    zero), each with its time in seconds so the tracks interleave."""
    first: int | None = None
    last = -1
    for packet in src.demux(stream):
        if packet.dts is None or packet.size == 0:
            continue
        first = packet.dts if first is None else first
        ts = max(packet.dts - first, last + 1)
        packet.dts = packet.pts = last = ts
        packet.stream = target
        yield float(ts * stream.time_base), packet


class ConversionFailed(RuntimeError):
    """``janus-pp-rec`` could not read a publisher's ``.mjr`` tracks: they are kept for a retry."""


def _mjr_name(mjr: Path) -> tuple[int, int, str] | None:
    """``videoroom-<room>-user-<publisher>-<µs since epoch>-<video|audio>-<mindex>.mjr``: its
    publisher, publish time and kind (None for a file not named so)."""
    parts = mjr.stem.split("-")
    if len(parts) != 7 or parts[0] != "videoroom" or parts[2] != "user" or parts[5] not in ("video", "audio"):
        return None
    try:
        return int(parts[3]), int(parts[4]), parts[5]
    except ValueError:
        return None


def _sessions(rec_dir: Path) -> list[tuple[int, int, list[Path]]]:
    """The room's ``.mjr`` files as publishing sessions: (publisher, start in µs, files).

    Janus opens a publisher's tracks one after another (microseconds apart, each file named with
    its own time); a publisher who unpublishes and publishes again, or rejoins, gets new files.
    So a publisher's files, in time order, start a new session when a kind repeats or more than
    ``SESSION_GAP_US`` has passed since the session's first file.
    """
    by_publisher: dict[int, list[tuple[int, str, Path]]] = {}
    for mjr in rec_dir.glob("*.mjr"):
        named = _mjr_name(mjr)
        if named is not None:
            by_publisher.setdefault(named[0], []).append((named[1], named[2], mjr))
    out: list[tuple[int, int, list[Path]]] = []
    for publisher, files in sorted(by_publisher.items()):
        current: tuple[int, int, list[Path]] | None = None
        kinds: set[str] = set()
        for at, kind, mjr in sorted(files):
            if current is None or kind in kinds or at - current[1] > SESSION_GAP_US:
                current, kinds = (publisher, at, []), set()
                out.append(current)
            current[2].append(mjr)
            kinds.add(kind)
    return out


SESSION_GAP_US = 2_000_000


def _sha256(path: Path) -> tuple[str, int]:
    """The file's sha256 and size, read in chunks (a long hearing's WebM is hundreds of MB)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def convert(rec_dir: Path, out_dir: Path) -> list[Converted]:
    """Each publishing session's ``.mjr`` tracks (video VP8 + audio Opus) into one WebM, no re-encode.

    ``janus-pp-rec`` depacketizes each track into its own container; the two are then muxed by
    stream copy (PyAV, packets as they are). Duration is read back from the file. A session none
    of whose tracks converts raises ``ConversionFailed`` (nothing is half-stored: the job retries).
    """
    import av  # PyAV, already a dependency of aiortc

    exe = shutil.which("janus-pp-rec")
    if exe is None:
        raise FileNotFoundError("未找到 janus-pp-rec: 请安装 Debian 软件包 janus-tools")
    out_dir.mkdir(parents=True, exist_ok=True)
    done: list[Converted] = []
    for publisher, started, parts in _sessions(rec_dir):
        tracks: list[Path] = []
        errors: list[str] = []
        for mjr in parts:
            target = out_dir / (mjr.stem + (".webm" if "-video-" in mjr.name else ".opus"))
            run = subprocess.run([exe, "-d", "0", str(mjr), str(target)], capture_output=True, timeout=300)
            if run.returncode == 0 and target.exists() and target.stat().st_size > 0:
                tracks.append(target)
            else:
                errors.append(f"{mjr.name}: {run.stderr.decode(errors='replace')[-300:]}")
        if not tracks:
            raise ConversionFailed(f"janus-pp-rec 无法转换 {', '.join(p.name for p in parts)}: {'; '.join(errors)}")
        final = out_dir / f"{parts[0].stem.rsplit('-', 2)[0]}.webm"
        with av.open(str(final), "w", format="webm") as out:
            sources = [av.open(str(t)) for t in tracks]
            try:
                lanes = [_lane(src, st, out.add_stream_from_template(st))
                         for src in sources for st in src.streams if st.type in ("video", "audio")]
                for _, packet in heapq.merge(*lanes, key=lambda item: item[0]):
                    out.mux(packet)
            finally:
                for src in sources:
                    src.close()
        for t in tracks:
            t.unlink()
        with av.open(str(final)) as check:
            duration = max((float(s.duration * s.time_base) for s in check.streams if s.duration),
                           default=(check.duration or 0) / 1_000_000)
        sha256, size = _sha256(final)
        done.append(Converted(final, sha256, size, duration, tuple(p.name for p in parts), publisher,
                              started / 1_000_000))
    return done
