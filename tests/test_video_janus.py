"""The janus backend: control path, TURN, media, and the room page, against the real servers.

Janus (Debian ``janus``) is started once for the module from the product's generated
configuration; a VideoRoom room is created with the admin key and one token per participant,
and a join without a listed token is refused by Janus itself. coturn (Debian ``coturn``) runs
the configuration ``tongban video turn-config`` writes; a TURN REST credential from
``video.turn`` gets a relay allocation, an expired or forged one does not. Every test runs in
the test process's own network namespace (tests/netns.py): Janus, coturn, uvicorn and Chromium
started here bind only 127.0.0.1 and the namespace's 10.77.0.1 on ``tb0``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint
from conftest import ALL_GGCS, Demo, free_port

from core.settings import ROOT, get_settings
from engine import scans
from engine.actors import SYSTEM
from storage.db import session_scope
from storage.object_local import LocalStore
from tests.netns import ADDRESS
from video import links, rooms, turn
from video.backends import janus

# Media and servers in the namespace of the test process (conftest makes it, tests/netns.py).
pytestmark = [pytest.mark.netns]

KEY = "test-admin-key"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        "--disable-features=WebRtcHideLocalIpsWithMdns"]


@pytest.fixture(scope="module")
def local_janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[janus.LocalJanus]:
    """One Janus for the module (started inside the namespace: its ICE uses ``tb0`` only)."""
    folder = tmp_path_factory.mktemp("janus")
    j = janus.start_local(folder / "cfg", http_port=free_port(), key=KEY, enforce_interfaces="tb0")
    yield j
    j.stop()


def coturn(tmp_path: Path, key: bytes, relay_ip: str = "127.0.0.1") -> tuple[subprocess.Popen[bytes], int]:
    """coturn on 127.0.0.1 with the product's configuration (``tongban video turn-config``),
    relaying from ``relay_ip``."""
    exe = shutil.which("turnserver")
    assert exe, "coturn is not installed (./tongban installs it)"
    port = free_port()
    conf = tmp_path / "turnserver.conf"
    conf.write_text(turn.coturn_config(realm="tongban", listening_ip="127.0.0.1", port=port,
                                       relay_ip=relay_ip, key=key, allow_loopback=True)
                    + f"pidfile={tmp_path / 'turn.pid'}\nuserdb={tmp_path / 'turndb'}\n")
    return subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port


def inspection_room(demo: Demo) -> tuple[str, str]:
    """A 公共场所卫生许可 case in 现场踏勘 and its open room: (number, room id)."""
    number = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")["number"]
    demo.fire("王芳", number, "accept")
    demo.fire("李强", number, "start_inspection")
    r = demo.client.post(f"/api/v1/cases/{number}/video-rooms", headers=demo.h("李强"), json={})
    assert r.status_code == 201, r.text
    return number, str(r.json()["id"])


def link(demo: Demo, room: str, role: str, name: str) -> str:
    r = demo.client.post(f"/api/v1/video/rooms/{room}/links", headers=demo.h("李强"),
                         json={"role": role, "name": name})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_room_admits_only_listed_tokens(local_janus: janus.LocalJanus, tmp_path: Path) -> None:
    api = janus.VideoRoomAPI(local_janus.url, KEY)
    link = janus.participant_token(janus.room_number("r1"), 1, KEY)
    number = api.create_room("r1", rec_dir=tmp_path / "rec", tokens=[link], secret="s1")
    assert number == janus.room_number("r1")
    with pytest.raises(janus.JanusError) as refused:
        janus.VideoRoomAPI(local_janus.url, KEY).join(number, "not-a-link", "陌生人")
    assert refused.value.code == 433
    with pytest.raises(janus.JanusError):
        janus.VideoRoomAPI(local_janus.url, KEY).join(number, None, "陌生人")
    joined = janus.VideoRoomAPI(local_janus.url, KEY).join(number, link, "申请人")
    assert joined["room"] == number
    later = janus.participant_token(janus.room_number("r1"), 2, KEY)  # a participant who joins later
    api.allow(number, "s1", [later])
    assert janus.VideoRoomAPI(local_janus.url, KEY).join(number, later, "专家")["room"] == number
    # Rooms are created with the admin key only.
    with pytest.raises(janus.JanusError, match="admin_key"):
        api.request({"request": "create", "admin_key": "wrong", "room": 42})
    api.destroy_room(number, "s1")
    with pytest.raises(janus.JanusError):
        janus.VideoRoomAPI(local_janus.url, KEY).join(number, link, "申请人")
    api.close()


async def turn_allocate(port: int, cred: turn.TurnCredential) -> tuple[str, int]:
    """A relay allocated from the coturn on ``port`` with ``cred``: the relayed address."""
    deadline = time.monotonic() + 10
    while True:
        try:
            transport, _ = await create_turn_endpoint(
                asyncio.DatagramProtocol, server_addr=("127.0.0.1", port),
                username=cred.username, password=cred.credential, lifetime=60)
        except ConnectionRefusedError:  # coturn not listening yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        relayed = transport.get_extra_info("sockname")
        transport.close()
        return relayed


def test_turn_rest_credential_is_what_coturn_accepts(tmp_path: Path) -> None:
    key = b"shared-turn-secret"
    proc, port = coturn(tmp_path, key)
    try:
        urls = (f"turn:127.0.0.1:{port}?transport=udp",)
        good = turn.credential("room-1:applicant", urls=urls, ttl=300, key=key)
        assert good is not None and good.ice_server()["urls"] == list(urls)
        relayed = asyncio.run(turn_allocate(port, good))
        assert relayed[0] == "127.0.0.1"
        expired = turn.credential("room-1:applicant", urls=urls, ttl=-10, key=key)
        forged = turn.credential("room-1:applicant", urls=urls, ttl=300, key=b"another-secret")
        for bad in (expired, forged):
            assert bad is not None
            with pytest.raises((stun.TransactionFailed, ConnectionError, asyncio.TimeoutError)):
                asyncio.run(turn_allocate(port, bad))
    finally:
        proc.terminate()
        proc.wait(10)


def test_no_turn_urls_no_credential() -> None:
    assert turn.credential("room:applicant", urls=()) is None


def janus_settings(monkeypatch: pytest.MonkeyPatch, j: janus.LocalJanus, data_dir: Path, **more: Any) -> None:
    """The janus backend against the module's Janus, with recordings under ``data_dir``."""
    settings = get_settings()
    for name, value in {"video_backend": "janus", "janus_url": j.url, "janus_admin_key": KEY,
                        "data_dir": data_dir, **more}.items():
        monkeypatch.setattr(settings, name, value)


def recording_job(demo: Demo) -> Any:
    """The room's recording job, claimed from the video queue (where Janus's disk is)."""
    from flows import outbox

    (job,) = [j for j in outbox.claim(demo.engine, "video", 100) if j["job"] == "janus_recordings"]
    return job


def test_aiortc_publisher_in_a_janus_room_is_recorded_as_case_evidence(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Media inside the test's own namespace: a participant admitted by its join link publishes
    from aiortc into the Janus room; at close the job (on the video queue) converts Janus's
    ``.mjr`` without re-encoding, stores a VP8/Opus WebM as the case's evidence, duration read
    back by PyAV, and deletes the ``.mjr`` originals once the evidence is stored."""
    import av
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    from flows import jobs
    from flows.recording_janus import store_room_recordings

    demo = sqlite_demo
    janus_settings(monkeypatch, local_janus, tmp_path / "data")
    number, room_id = inspection_room(demo)
    token = link(demo, room_id, "applicant", "张三")
    with session_scope(demo.engine) as s:
        claim = links.verify(token)
        pid, _ = rooms.record_join(s, rooms.admit(s, claim), claim)

    j = local_janus
    rec_dir = janus.recordings_dir(room_id)
    publisher = janus.publisher_number(pid)
    try:
        api = janus.VideoRoomAPI(j.url, KEY)
        number_j = api.ensure_room(room_id, rec_dir=rec_dir)
        tok = janus.participant_token(number_j, publisher)
        api.allow(number_j, janus.room_secret(room_id), [tok])
        pub = janus.VideoRoomAPI(j.url, KEY)
        pub.join(number_j, tok, "张三", publisher=publisher)

        async def run() -> None:
            pc = RTCPeerConnection()
            pc.addTrack(AudioStreamTrack())
            pc.addTrack(VideoStreamTrack())
            await pc.setLocalDescription(await pc.createOffer())
            answer = await asyncio.to_thread(janus.publish, pub, pc.localDescription.sdp)
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            deadline = time.monotonic() + 10
            while pc.connectionState != "connected":
                assert time.monotonic() < deadline, pc.connectionState
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)  # two seconds of media to record
            await pc.close()

        asyncio.run(run())
        api.destroy_room(number_j, janus.room_secret(room_id))  # closes the room's recordings
        deadline = time.monotonic() + 10
        while len(list(rec_dir.glob("*.mjr"))) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        api.close()
        pub.close()
    kept = tmp_path / "kept"  # a copy of the originals, to convert again below
    shutil.copytree(rec_dir, kept)
    with session_scope(demo.engine) as s:
        assert rooms.close(s, room_id, "ended")
    job = recording_job(demo)
    assert job["region_code"] == "video"
    out = jobs.run(demo.engine, job)
    assert demo.count("outbox", job="janus_recordings", status="done") == 1
    [stored] = out["recordings"]
    assert 1.0 < stored["duration_s"] < 6.0, stored
    # The originals are gone once the evidence is stored (the evidence is what is kept).
    assert not rec_dir.exists(), list(rec_dir.iterdir())
    with session_scope(demo.engine) as s:
        evidence = scans.list_evidence(s, number, SYSTEM)
        [rec] = rooms.describe(s, room_id)["recordings"]
    assert [e["kind"] for e in evidence if e["kind"] == "recording"] == ["recording"]
    evidence = [e for e in evidence if e["kind"] == "recording"]
    assert evidence[0]["sha256"] == stored["sha256"] == rec["sha256"] and rec["content_type"] == "video/webm"
    data = b"".join(scans.read_evidence(evidence[0]["bucket"], evidence[0]["key"]))
    assert hashlib.sha256(data).hexdigest() == rec["sha256"] and len(data) == rec["size"]
    with av.open(io.BytesIO(data)) as f:
        assert {st.type: st.codec_context.name for st in f.streams} == {"video": "vp8", "audio": "opus"}
    # A replay converting the same originals again stores nothing twice.
    objects = LocalStore(tmp_path / "objects")
    assert store_room_recordings(demo.engine, room_id, kept, tmp_path / "out2", objects) == []
    assert "video_recording" in history_kinds(demo, number)


def closed_room_with_participant(demo: Demo) -> tuple[str, str]:
    """An inspection room someone joined, closed with the janus backend: its job is queued."""
    number, room_id = inspection_room(demo)
    token = link(demo, room_id, "applicant", "张三")
    with session_scope(demo.engine) as s:
        claim = links.verify(token)
        rooms.record_join(s, rooms.admit(s, claim), claim)
    with session_scope(demo.engine) as s:
        assert rooms.close(s, room_id, "ended")
    return number, room_id


def test_recording_job_without_the_recordings_folder_is_retried_not_done(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Participants were in the room but its recording folder is not on this machine (a worker
    without Janus's disk): the attempt fails and the job waits for a retry, no evidence stored."""
    from flows import jobs
    from flows.recording_janus import RecordingsNotReady

    janus_settings(monkeypatch, local_janus, tmp_path / "data")
    number, room_id = closed_room_with_participant(sqlite_demo)
    assert not janus.recordings_dir(room_id).exists()
    job = recording_job(sqlite_demo)
    with pytest.raises(RecordingsNotReady, match="录像目录"):
        jobs.run(sqlite_demo.engine, job)
    assert sqlite_demo.count("outbox", job="janus_recordings", status="done") == 0
    assert sqlite_demo.count("outbox", job="janus_recordings", status="pending") == 1
    assert sqlite_demo.count("video_recordings") == 0


def test_recording_job_with_janus_unreachable_is_retried(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Janus cannot confirm the room is destroyed (its recordings may still be open): retried."""
    from flows import jobs
    from flows.recording_janus import RecordingsNotReady

    janus_settings(monkeypatch, local_janus, tmp_path / "data")
    number, room_id = closed_room_with_participant(sqlite_demo)
    janus.recordings_dir(room_id).mkdir(parents=True)
    monkeypatch.setattr(get_settings(), "janus_url", f"http://127.0.0.1:{free_port()}/janus")  # nobody there
    job = recording_job(sqlite_demo)
    with pytest.raises(RecordingsNotReady, match="Janus"):
        jobs.run(sqlite_demo.engine, job)
    assert sqlite_demo.count("outbox", job="janus_recordings", status="done") == 0
    assert sqlite_demo.count("outbox", job="janus_recordings", status="pending") == 1


def test_mjr_files_split_into_publishing_sessions(tmp_path: Path) -> None:
    """A publisher who publishes again gets new files (a later time in their names): each
    publishing session is its own recording, its tracks opened microseconds apart kept together."""
    t0 = 1_796_350_507_098_148
    names = [f"videoroom-9-user-5-{t0}-audio-0.mjr", f"videoroom-9-user-5-{t0 + 138}-video-1.mjr",
             f"videoroom-9-user-5-{t0 + 60_000_000}-audio-0.mjr",
             f"videoroom-9-user-5-{t0 + 60_000_090}-video-1.mjr",
             f"videoroom-9-user-7-{t0 + 5}-video-1.mjr", "notes.txt.mjr"]
    for n in names:
        (tmp_path / n).touch()
    sessions = janus._sessions(tmp_path)
    assert [(p, at, sorted(f.name for f in files)) for p, at, files in sessions] == [
        (5, t0, sorted(names[:2])), (5, t0 + 60_000_000, sorted(names[2:4])), (7, t0 + 5, [names[4]])]


def test_join_page_carries_a_turn_rest_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings
    from video.page import ice_servers

    monkeypatch.setattr(get_settings(), "turn_urls", "turn:turn.example.gov.cn:3478?transport=udp")
    monkeypatch.setattr(get_settings(), "turn_secret", "s3cret")
    [server] = ice_servers("room1", "applicant")
    expiry, _, who = str(server["username"]).partition(":")
    assert who == "room1:applicant".replace(":", "_") and int(expiry) > time.time()
    assert server["credential"] == turn.password(str(server["username"]), b"s3cret")
    monkeypatch.setattr(get_settings(), "turn_urls", "")
    assert ice_servers("room1", "applicant") == []


def turn_config_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, *args: str) -> Path:
    """``tongban video turn-config … -o FILE``, as an operator runs it; the file it wrote."""
    from typer.testing import CliRunner

    from cli.main import app as cli_app

    monkeypatch.setattr(get_settings(), "turn_secret", key)
    conf = tmp_path / "turnserver.conf"
    done = CliRunner().invoke(cli_app, ["video", "turn-config", *args, "-o", str(conf)])
    assert done.exit_code == 0, done.output
    return conf


def coturn_from(conf: Path) -> subprocess.Popen[bytes]:
    """coturn on the file exactly as written (its pid file and database beside it, given on the
    command line: the generated file is not edited)."""
    exe = shutil.which("turnserver")
    assert exe, "coturn is not installed (./tongban installs it)"
    return subprocess.Popen([exe, "-c", str(conf), "--pidfile", str(conf.parent / "turn.pid"),
                             "--userdb", str(conf.parent / "turndb")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_turn_config_file_is_private_and_coturn_accepts_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``-o`` writes the shared secret into a 0600 file (also over an existing, readable one), and
    coturn started on that file as written grants a relay to the join link's TURN REST credential."""
    import stat

    (tmp_path / "turnserver.conf").write_text("old\n")
    (tmp_path / "turnserver.conf").chmod(0o644)
    port = free_port()
    conf = turn_config_cli(tmp_path, monkeypatch, "cli-secret", "--listening-ip", "127.0.0.1", "--port", str(port))
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    text = conf.read_text()
    assert "static-auth-secret=cli-secret" in text and "allow-loopback-peers" not in text
    proc = coturn_from(conf)
    try:
        cred = turn.credential("room-9:applicant", urls=(f"turn:127.0.0.1:{port}?transport=udp",))
        assert cred is not None
        assert asyncio.run(turn_allocate(port, cred))[0] == "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_relay_only_ice_connects_through_coturn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``iceTransportPolicy: relay`` on both peers (no host candidates at all): media and data
    still flow, through a real coturn running the configuration ``tongban video turn-config``
    writes for a deployment — relays on the namespace's 10.77.0.1, private networks denied, only
    the media server's address let through (``--allow-peer``), no loopback allowance."""
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    key = "relay-secret"
    port = free_port()
    conf = turn_config_cli(tmp_path, monkeypatch, key, "--listening-ip", ADDRESS, "--relay-ip", ADDRESS,
                           "--allow-peer", ADDRESS, "--port", str(port))
    text = conf.read_text()
    assert "allow-loopback-peers" not in text and "denied-peer-ip=10.0.0.0-10.255.255.255" in text
    assert f"allowed-peer-ip={ADDRESS}" in text and f"relay-ip={ADDRESS}" in text
    proc = coturn_from(conf)
    try:
        url = (f"turn:{ADDRESS}:{port}?transport=udp",)

        def config(who: str) -> RTCConfiguration:
            cred = turn.credential(who, urls=url, ttl=300, key=key.encode())
            assert cred is not None
            return RTCConfiguration([RTCIceServer(list(cred.urls), cred.username, cred.credential)],
                                    iceTransportPolicy=RTCIceTransportPolicy.RELAY)

        async def run() -> tuple[str, list[str]]:
            deadline = time.monotonic() + 10
            while subprocess.run(["ss", "-lnu", f"sport = :{port}"], capture_output=True,
                                 text=True).stdout.count(f":{port}") == 0:
                assert time.monotonic() < deadline, "coturn did not start"
                await asyncio.sleep(0.05)
            a, b = RTCPeerConnection(config("r:clerk")), RTCPeerConnection(config("r:applicant"))
            got: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            channel = a.createDataChannel("room")

            @b.on("datachannel")
            def _(ch) -> None:  # type: ignore[no-untyped-def]
                ch.on("message", lambda m: got.done() or got.set_result(m))

            channel.on("open", lambda: channel.send("你好"))
            await a.setLocalDescription(await a.createOffer())
            offer = a.localDescription.sdp
            await b.setRemoteDescription(a.localDescription)
            await b.setLocalDescription(await b.createAnswer())
            await a.setRemoteDescription(b.localDescription)
            message = await asyncio.wait_for(got, 15)
            kinds = [line.split(" typ ")[1].split()[0] for line in offer.splitlines() if " typ " in line]
            await a.close()
            await b.close()
            return message, kinds

        message, kinds = asyncio.run(run())
        assert message == "你好"
        assert kinds and set(kinds) == {"relay"}  # only relayed candidates were offered
    finally:
        proc.terminate()
        proc.wait(10)


# Frames the page decoded for the clerk's tile (Janus forwards the clerk's aiortc stream).
CLERK_VIDEO = """() => {
  const v = document.querySelector('figure[data-role="clerk"] video');
  if (!v) return null;
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  return {w: v.videoWidth, h: v.videoHeight, frames: q};
}"""


# The candidate types of the page's connections to Janus (publisher and subscriber handles).
PAGE_CANDIDATES = """async () => {
  const room = window.tongbanRoom;
  const pcs = [room.pub, ...Object.values(room.views)].map((h) => h.webrtcStuff && h.webrtcStuff.pc).filter(Boolean);
  const types = [];
  for (const pc of pcs) {
    (await pc.getStats()).forEach((r) => { if (r.type === "local-candidate") types.push(r.candidateType); });
  }
  return types;
}"""


@pytest.mark.browser
def test_chromium_and_aiortc_in_one_janus_room(sqlite_demo: Demo, local_janus: janus.LocalJanus,
                                               serve_app: Any, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """``TONGBAN_VIDEO_BACKEND=janus`` behind the same room routes and page: the applicant's page
    (Chromium, fake camera, janus.js through Tongban's proxy, relay-only ICE through coturn with
    the page's TURN REST credential) and the clerk (aiortc) see each other through Janus; the
    page's chat lands in the case history; the clerk's still request makes the page upload a
    full-resolution frame of its own camera into a material slot; the clerk ends the meeting,
    which queues the recording job; the job stores both participants' Janus recordings as
    evidence, WebM that PyAV reads back with their durations."""
    import av
    from playwright.async_api import async_playwright

    from video.client import JanusPeer, wait_until
    from video.janus_hub import JanusHub
    from video.synthetic import PatternTrack, ToneTrack

    # The page connects through coturn only (relay candidates, iceTransportPolicy "relay").
    turn_key = "page-turn-secret"
    turnserver, turn_port = coturn(tmp_path, turn_key.encode(), relay_ip=ADDRESS)  # where Janus listens
    settings = get_settings()
    for name, value in {"video_backend": "janus", "janus_url": local_janus.url, "janus_admin_key": KEY,
                        "data_dir": tmp_path / "data", "turn_secret": turn_key, "turn_relay_only": True,
                        "turn_urls": f"turn:127.0.0.1:{turn_port}?transport=udp"}.items():
        monkeypatch.setattr(settings, name, value)
    demo = sqlite_demo
    number, room_id = inspection_room(demo)
    clerk_token, applicant_token = link(demo, room_id, "clerk", "李强"), link(demo, room_id, "applicant", "张三")
    demo.client.app.state.video_hub = JanusHub()  # type: ignore[attr-defined]
    base = serve_app(demo.client.app)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def scenario() -> dict[str, Any]:
        clerk = JanusPeer(base, clerk_token, [PatternTrack(640, 480), ToneTrack()])
        await clerk.join()
        await asyncio.wait_for(clerk.connected.wait(), 15)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            logs: list[str] = []
            page.on("console", lambda m: logs.append(m.text))
            await page.goto(f"{base}/video/join?t={applicant_token}")
            await page.wait_for_function("() => window.tongbanRoom && window.tongbanRoom.connected", timeout=20_000)
            await page.wait_for_function(
                "() => { const v = document.querySelector('figure[data-role=\"clerk\"] video');"
                " return v && v.videoWidth > 0; }", timeout=20_000)
            seen_by_page = await page.evaluate(CLERK_VIDEO)
            candidates = await page.evaluate(PAGE_CANDIDATES)
            applicant_id = await page.evaluate("() => window.tongbanRoom.me")
            await wait_until(lambda: clerk.received.get(applicant_id) is not None
                             and clerk.received[applicant_id].frames > 5)
            await page.fill("#chat-text", "我是申请人, 画面清楚")
            await page.click("#chat-form button")
            await clerk.wait_message("chat", text="我是申请人, 画面清楚")
            # The clerk asks for a still of the applicant's document camera (floor plans).
            shot = await clerk.post("captures", {"participant": applicant_id, "material_id": "floor_plans"})
            assert shot.status_code == 201, shot.text
            await page.wait_for_function("() => document.querySelector('#chat').textContent.includes('拍照上传')")
            still = await page.evaluate("() => window.tongbanRoom.stills[0]")
            camera = await page.evaluate("() => window.tongbanRoom.stream.getVideoTracks()[0].getSettings()")
            await page.screenshot(path=str(ARTIFACTS / "video_janus_applicant_room.png"), full_page=True)
            ended = await clerk.post("end")
            assert ended.status_code == 200, ended.text
            await page.wait_for_function("() => window.tongbanRoom.closed", timeout=10_000)
            status = await page.text_content("#status")
            await browser.close()
        received = clerk.received[applicant_id]
        await clerk.close(leave=False)
        return {"seen": seen_by_page, "candidates": candidates, "received": received.frames, "width": received.width,
                "shot": shot.json(), "still": still, "camera": camera, "status": status, "logs": logs}

    try:
        out = asyncio.run(scenario())
    finally:
        turnserver.terminate()
        turnserver.wait(10)
    # Publishing and viewing went through coturn: the page offered relayed candidates only.
    assert out["candidates"] and set(out["candidates"]) == {"relay"}, out
    assert out["seen"]["w"] == 640 and out["seen"]["h"] == 480, out  # the clerk's stream, forwarded as sent
    assert out["received"] > 5 and out["width"] > 0, out
    assert out["status"] == "会议已结束: 工作人员已结束会议", out
    # The still: the camera's own resolution, filed as a page of the chosen material.
    shot, cam = out["shot"], out["camera"]
    assert (shot["width"], shot["height"]) == (cam["width"], cam["height"]) == (1280, 720), out
    assert shot["material_id"] == "floor_plans" and out["still"]["sha256"] == shot["sha256"]
    assert out["still"]["how"] in ("ImageCapture", "canvas"), out
    print("still taken by", out["still"]["how"])
    with session_scope(demo.engine) as s:
        (page_row,) = scans.list_pages(s, number, SYSTEM, "floor_plans")
    assert page_row["sha256"] == shot["sha256"]
    events = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("李强")).json()["items"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("video_join") == 2 and "video_chat" in kinds and "video_capture" in kinds
    assert "video_close" in kinds and "video_recording" not in kinds  # not yet: the job stores them
    # Closing queued the recording job through the outbox; the drain runs it.
    assert demo.count("outbox", job="janus_recordings", status="pending") == 1
    # The drain's runner on the claimed job (the notices' drawing, queued by the transitions, is
    # other work: left claimed).
    from flows import jobs, outbox

    (job,) = [j for j in outbox.claim(demo.engine, None, 100) if j["job"] == "janus_recordings"]
    jobs.run(demo.engine, job)
    assert demo.count("outbox", job="janus_recordings", status="done") == 1
    with session_scope(demo.engine) as s:
        evidence = scans.list_evidence(s, number, SYSTEM)
        described = rooms.describe(s, room_id)
    evidence = [e for e in evidence if e["kind"] == "recording"]  # beside the notices drawn
    assert len(evidence) == 2, evidence
    assert {r["participant_id"] for r in described["recordings"]} == {p["id"] for p in described["participants"]}
    for e in evidence:
        data = b"".join(scans.read_evidence(e["bucket"], e["key"]))
        assert hashlib.sha256(data).hexdigest() == e["sha256"]
        with av.open(io.BytesIO(data)) as f:  # it plays: PyAV reads its duration and decodes it
            codecs = {st.type: st.codec_context.name for st in f.streams}
            duration = (f.duration or 0) / 1_000_000
            first = next(f.decode(video=0))
        with av.open(io.BytesIO(data)) as f:
            frames = sum(1 for p in f.demux(video=0) if p.size)
        # (Chromium's sender starts small and adapts: the first frame's size is the browser's choice.)
        assert codecs == {"video": "vp8", "audio": "opus"} and first.width > 0, (codecs, first)
        assert frames > 10, frames
        assert duration > 0.5 and abs(duration - e["meta"]["duration_s"]) < 0.5, (duration, e)
    assert "video_recording" in history_kinds(demo, number)


def history_kinds(demo: Demo, number: str) -> list[str]:
    events = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("李强")).json()["items"]
    return [e["kind"] for e in events]


def test_the_proxy_passes_only_what_a_page_needs_and_only_for_the_janus_backend(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    client = sqlite_demo.client
    # The embedded backend: no proxy, and a join must carry the page's offer.
    assert client.post("/video/janus", json={"janus": "create", "transaction": "t1"}).status_code == 404
    number, room_id = inspection_room(sqlite_demo)
    token = link(sqlite_demo, room_id, "applicant", "张三")
    r = client.post("/api/v1/video/join", json={"token": token})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sdp", r.text
    settings = get_settings()
    for name, value in {"video_backend": "janus", "janus_url": local_janus.url, "janus_admin_key": KEY,
                        "data_dir": tmp_path}.items():
        monkeypatch.setattr(settings, name, value)
    del client.app.state.video_hub  # type: ignore[attr-defined]  # made on first use, of the backend then set
    created = client.post("/video/janus", json={"janus": "create", "transaction": "t2"})
    assert created.status_code == 200 and created.json()["janus"] == "success", created.text
    session = created.json()["data"]["id"]
    for path in ("/video/janus/info", "/video/janus/admin", f"/video/janus/{session}/../admin"):
        assert client.get(path).status_code == 404, path
    attached = client.post(f"/video/janus/{session}", json={"janus": "attach", "plugin": "janus.plugin.videoroom",
                                                            "transaction": "t3"}).json()
    handle = attached["data"]["id"]
    # Room management and listings are Tongban's (admin key, room secret), not the page's.
    api = janus.VideoRoomAPI(local_janus.url, KEY)
    number = api.ensure_room(room_id, rec_dir=janus.recordings_dir(room_id))
    api.close()
    for body in ({"request": "listparticipants", "room": number}, {"request": "list"},
                 {"request": "kick", "room": number, "id": 1}, {"request": "create", "room": 7},
                 {"request": "configure", "record": False}):
        r = client.post(f"/video/janus/{session}/{handle}",
                        json={"janus": "message", "body": body, "transaction": "t4"})
        assert r.status_code == 403, (body, r.text)
    r = client.post(f"/video/janus/{session}", json={"janus": "attach", "plugin": "janus.plugin.echotest",
                                                     "transaction": "t5"})
    assert r.status_code == 403
    assert client.post(f"/video/janus/{session}", json={"janus": "info"}).status_code == 403
    gone = client.post(f"/video/janus/{session}", json={"janus": "destroy", "transaction": "t3"})
    assert gone.json()["janus"] == "success"


def janus_join(demo: Demo, token: str) -> dict[str, Any]:
    r = demo.client.post("/api/v1/video/join", json={"token": token})
    assert r.status_code == 200, r.text
    return dict(r.json())


def proxied_handle(demo: Demo) -> str:
    """A Janus session and VideoRoom handle made through Tongban's proxy, as janus.js makes them."""
    session = demo.client.post("/video/janus", json={"janus": "create", "transaction": "c"}).json()["data"]["id"]
    handle = demo.client.post(f"/video/janus/{session}", json={
        "janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "a"}).json()["data"]["id"]
    return f"/video/janus/{session}/{handle}"


def participants_in_janus(j: janus.LocalJanus, number: int) -> set[int]:
    api = janus.VideoRoomAPI(j.url, KEY)
    try:
        return {p["id"] for p in api.request({"request": "listparticipants", "room": number})["participants"]}
    finally:
        api.close()


def test_a_token_publishes_only_as_its_own_participant_and_dies_with_the_leave(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each VideoRoom token is bound to the publisher id issued with it: the proxy refuses a join
    with another participant's id (403 problem details). Leaving takes the token off the room's
    ``allowed`` list and kicks the participant, so Janus itself refuses the token afterwards."""
    from video.janus_hub import JanusHub

    demo = sqlite_demo
    janus_settings(monkeypatch, local_janus, tmp_path / "data")
    demo.client.app.state.video_hub = JanusHub()  # type: ignore[attr-defined]
    number, room_id = inspection_room(demo)
    a = janus_join(demo, link(demo, room_id, "applicant", "张三"))
    b = janus_join(demo, link(demo, room_id, "expert", "王专家"))
    ja, jb = a["janus"], b["janus"]
    assert ja["room"] == jb["room"] and ja["publisher"] != jb["publisher"] and ja["token"] != jb["token"]
    path = proxied_handle(demo)

    def join(body: dict[str, Any]) -> Any:
        return demo.client.post(path, json={"janus": "message", "transaction": "j", "body": {
            "request": "join", "ptype": "publisher", "room": ja["room"], "display": "张三", **body}})

    for wrong in ({"token": ja["token"], "id": jb["publisher"]},  # A's token, B's place
                  {"token": ja["token"]},  # an id of Janus's choosing
                  {"token": ja["token"], "id": str(ja["publisher"])}):
        r = join(wrong)
        assert r.status_code == 403, (wrong, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["missing"] == ["janus_publisher"], r.text
    assert join({"token": ja["token"], "id": ja["publisher"]}).json()["janus"] == "ack"
    deadline = time.monotonic() + 10
    while ja["publisher"] not in participants_in_janus(local_janus, ja["room"]):
        assert time.monotonic() < deadline, "the proxied join did not reach the room"
        time.sleep(0.05)
    r = demo.client.post(f"/api/v1/video/rooms/{room_id}/leave", headers={"X-Participant-Key": a["key"]})
    assert r.status_code == 200, r.text
    assert ja["publisher"] not in participants_in_janus(local_janus, ja["room"])  # kicked
    with pytest.raises(janus.JanusError) as refused:  # the token no longer opens the room
        janus.VideoRoomAPI(local_janus.url, KEY).join(ja["room"], ja["token"], "张三", publisher=ja["publisher"])
    assert refused.value.code == 433
    # B's token, still allowed, still opens it.
    assert janus.VideoRoomAPI(local_janus.url, KEY).join(
        jb["room"], jb["token"], "王专家", publisher=jb["publisher"])["room"] == jb["room"]


def test_a_peer_that_stops_polling_is_marked_left_and_the_room_idle_closes(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Janus participant has no peer connection with Tongban: their page's events poll is how
    Tongban knows they are there. One that stops polling (tab closed, network gone) is marked
    left by the hub's sweep after ``janus_gone_seconds``, and the room, empty, idle-closes."""
    from video.janus_hub import JanusHub

    demo = sqlite_demo
    janus_settings(monkeypatch, local_janus, tmp_path / "data", janus_gone_seconds=1.5)
    hub = demo.client.app.state.video_hub = JanusHub(idle_seconds=1, watch_seconds=0.2)  # type: ignore[attr-defined]
    number, room_id = inspection_room(demo)
    polling = janus_join(demo, link(demo, room_id, "clerk", "李强"))
    silent = janus_join(demo, link(demo, room_id, "applicant", "张三"))
    # The clerk's page keeps polling; the applicant's never does.
    after = 0
    for _ in range(7):  # 3.5 s: the silent one is gone after 1.5 s (and a sweep)
        r = demo.client.get(f"/api/v1/video/rooms/{room_id}/events", params={"wait": 0.5, "after": after},
                            headers={"X-Participant-Key": polling["key"]})
        assert r.status_code == 200, r.text
        after = r.json()["next"]
    with session_scope(demo.engine) as s:
        parts = {p["id"]: p for p in rooms.describe(s, room_id)["participants"]}
    assert parts[silent["participant"]]["left_at"] is not None
    assert parts[polling["participant"]]["left_at"] is None
    assert "video_leave" in history_kinds(demo, number)
    # Now the clerk's page goes quiet too: gone, then the empty room closes by itself.
    deadline = time.monotonic() + 10
    while True:
        with session_scope(demo.engine) as s:
            described = rooms.describe(s, room_id)
        if described["status"] == "closed":
            break
        assert time.monotonic() < deadline, described
        time.sleep(0.1)
    assert described["close_reason"] == "idle"
    assert all(p["left_at"] is not None for p in described["participants"])
    assert room_id not in hub.rooms
    events = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("李强")).json()["items"]
    [leave] = [e for e in events if e["kind"] == "video_leave" and e["data"]["participant"] == silent["participant"]]
    assert leave["data"]["reason"] == "gone"


def test_a_participant_janus_refuses_is_not_left_in_the_room(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If Janus refuses to let the participant's token in (here: a room of that number made by
    someone else, with another secret), the join fails (503) and the history records the leave."""
    from video.janus_hub import JanusHub

    demo = sqlite_demo
    janus_settings(monkeypatch, local_janus, tmp_path / "data")
    demo.client.app.state.video_hub = JanusHub()  # type: ignore[attr-defined]
    number, room_id = inspection_room(demo)
    api = janus.VideoRoomAPI(local_janus.url, KEY)
    try:
        api.create_room(room_id, rec_dir=tmp_path / "other", tokens=[], secret="not-tongbans")
        r = demo.client.post("/api/v1/video/join", json={"token": link(demo, room_id, "applicant", "张三")})
        assert r.status_code == 503, r.text
    finally:
        api.destroy_room(janus.room_number(room_id), "not-tongbans")
        api.close()
    with session_scope(demo.engine) as s:
        [part] = rooms.describe(s, room_id)["participants"]
    assert part["left_at"] is not None
    kinds = history_kinds(demo, number)
    assert kinds.count("video_join") == kinds.count("video_leave") == 1


def test_the_join_answer_carries_turn_servers_valid_as_long_as_the_link(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /api/v1/video/join answers the TURN servers with a TURN REST credential (a client other
    than the page needs them too), and the credential outlives neither less than the join link."""
    from datetime import datetime

    from video.janus_hub import JanusHub

    demo = sqlite_demo
    janus_settings(monkeypatch, local_janus, tmp_path / "data", turn_secret="join-secret", turn_ttl_seconds=600,
                   turn_urls="turn:turn.example.gov.cn:3478?transport=udp")
    demo.client.app.state.video_hub = JanusHub()  # type: ignore[attr-defined]
    number, room_id = inspection_room(demo)
    r = demo.client.post(f"/api/v1/video/rooms/{room_id}/links", headers=demo.h("李强"),
                         json={"role": "applicant", "name": "张三", "minutes": 8 * 60})
    expires = datetime.fromisoformat(r.json()["expires_at"]).timestamp()
    joined = janus_join(demo, r.json()["token"])
    [server] = joined["ice_servers"]
    assert server["urls"] == ["turn:turn.example.gov.cn:3478?transport=udp"]
    # The link is good until its whole second (what the signed token holds): 8 h, not 600 s.
    assert int(server["username"].split(":")[0]) >= int(expires) > time.time() + 7 * 3600
    assert server["credential"] == turn.password(server["username"], b"join-secret")
    monkeypatch.setattr(get_settings(), "turn_urls", "")
    assert janus_join(demo, link(demo, room_id, "expert", "王专家"))["ice_servers"] == []


def test_janus_behind_nat_announces_its_public_address(tmp_path: Path) -> None:
    """``TONGBAN_JANUS_PUBLIC_IP`` is written as Janus's ``nat_1_1_mapping``: the candidates of its
    answer carry that address instead of the interface's (here 127.0.0.2 stands for the public
    one, in place of the namespace's 10.77.0.1)."""
    from aiortc import RTCPeerConnection
    from aiortc.mediastreams import VideoStreamTrack

    j = janus.start_local(tmp_path / "cfg", http_port=free_port(), key=KEY, enforce_interfaces="tb0",
                          public_ip="127.0.0.2")
    try:
        assert 'nat_1_1_mapping = "127.0.0.2"' in (tmp_path / "cfg" / "janus.jcfg").read_text()
        api, pub = janus.VideoRoomAPI(j.url, KEY), janus.VideoRoomAPI(j.url, KEY)
        tok = janus.participant_token(janus.room_number("nat"), 1, KEY)
        number = api.create_room("nat", rec_dir=tmp_path / "rec", tokens=[tok], secret="s")
        pub.join(number, tok, "张三", publisher=1)

        def candidates(offer: str) -> list[str]:
            """Janus's own candidates: in its answer, or trickled after it (full trickle)."""
            pub._call(f"{pub.url}/{pub.session}/{pub.handle}", {
                "janus": "message", "body": {"request": "publish", "audio": False, "video": True},
                "jsep": {"type": "offer", "sdp": offer}})
            found: list[str] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                events = pub.http.get(f"{pub.url}/{pub.session}", params={"maxev": 5}, timeout=35).json()
                for ev in events if isinstance(events, list) else [events]:
                    sdp = (ev.get("jsep") or {}).get("sdp", "")
                    found += [ln.removeprefix("a=") for ln in sdp.splitlines() if ln.startswith("a=candidate")]
                    cand = ev.get("candidate") or {}
                    if cand.get("completed") or (sdp and "a=end-of-candidates" in sdp):
                        return found
                    if cand.get("candidate"):
                        found.append(cand["candidate"])
            return found

        async def answer() -> list[str]:
            pc = RTCPeerConnection()
            pc.addTrack(VideoStreamTrack())
            await pc.setLocalDescription(await pc.createOffer())
            lines = await asyncio.to_thread(candidates, pc.localDescription.sdp)
            await pc.close()
            return lines

        hosts = {line.split()[4] for line in asyncio.run(answer())}
        api.close()
        pub.close()
    finally:
        j.stop()
    assert hosts == {"127.0.0.2"}, hosts


def test_janus_plugins_are_found_on_any_architecture(tmp_path: Path) -> None:
    """Debian puts Janus's modules under the multiarch triplet: found by glob, not assumed x86_64."""
    (tmp_path / "aarch64-linux-gnu" / "janus" / "plugins").mkdir(parents=True)
    (tmp_path / "aarch64-linux-gnu" / "other").mkdir()
    assert janus.plugin_dir(tmp_path) == tmp_path / "aarch64-linux-gnu" / "janus"
    assert (janus.plugin_dir() / "plugins" / "libjanus_videoroom.so").exists()  # this machine's


def test_publishers_per_room_is_a_setting(local_janus: janus.LocalJanus, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "janus_publishers", 2)
    api = janus.VideoRoomAPI(local_janus.url, KEY)
    try:
        number = api.create_room("cap", rec_dir=tmp_path / "rec", tokens=[], secret="s")
        [room] = [r for r in api.request({"request": "list", "admin_key": KEY})["list"] if r["room"] == number]
        assert room["max_publishers"] == 2
        api.destroy_room(number, "s")
    finally:
        api.close()


def test_still_uploads_are_refused_without_writing_anything(
        sqlite_demo: Demo, local_janus: janus.LocalJanus, serve_app: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's still upload (``…/stills/{request}``): a request nobody made is 404; while the
    clerk's request waits, a body that is not an image is 422 (also under an image type), one over
    the size limit 413 — and none leaves a page or a stored object; the embedded backend has no
    such route (409: it captures on the server)."""
    import httpx

    from video.janus_hub import JanusHub

    demo = sqlite_demo
    number, room_id = inspection_room(demo)
    stills = f"/api/v1/video/rooms/{room_id}/stills"
    # The embedded backend (the default): the page never uploads stills.
    r = demo.client.post(f"{stills}/abc", content=b"\xff\xd8", headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 409, r.text
    janus_settings(monkeypatch, local_janus, tmp_path / "data", video_max_file_bytes=64 * 1024)
    objects = tmp_path / "objects"
    demo.client.app.state.video_hub = JanusHub(store=LocalStore(objects))  # type: ignore[attr-defined]
    clerk = janus_join(demo, link(demo, room_id, "clerk", "李强"))
    applicant = janus_join(demo, link(demo, room_id, "applicant", "张三"))
    base = serve_app(demo.client.app)

    async def scenario() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            page = {"X-Participant-Key": applicant["key"]}

            async def upload(request_id: str, body: bytes, kind: str = "image/jpeg") -> httpx.Response:
                return await http.post(f"{stills}/{request_id}", content=body,
                                       headers={**page, "Content-Type": kind})

            out: dict[str, Any] = {"unknown": await upload("0123456789abcdef", b"\xff\xd8\xff")}
            shot = asyncio.ensure_future(http.post(
                f"/api/v1/video/rooms/{room_id}/captures", headers={"X-Participant-Key": clerk["key"]},
                json={"participant": applicant["participant"], "material_id": "floor_plans"}))
            after, request_id = 0, None
            while request_id is None:
                r = await http.get(f"/api/v1/video/rooms/{room_id}/events", headers=page,
                                   params={"after": after, "wait": 5})
                after = r.json()["next"]
                request_id = next((e["id"] for e in r.json()["items"] if e["t"] == "still_request"), None)
            out["text"] = await upload(request_id, b"not a picture", "text/plain")
            out["oversized"] = await upload(request_id, b"\xff\xd8\xff" + bytes(64 * 1024))
            out["not_image"] = await upload(request_id, b"GIF89a but really just text" * 10)
            out["shot"] = await shot  # the clerk hears why
            return out

    out = asyncio.run(scenario())
    assert out["unknown"].status_code == 404, out["unknown"].text
    assert out["text"].status_code == 422 and out["text"].json()["errors"][0]["field"] == "Content-Type"
    assert out["oversized"].status_code == 413, out["oversized"].text
    assert out["not_image"].status_code == 422, out["not_image"].text
    assert out["shot"].status_code == 422, out["shot"].text
    assert demo.count("case_pages") == 0
    assert not objects.exists() or not [p for p in objects.rglob("*") if p.is_file()]
    assert "video_capture" not in history_kinds(demo, number)
