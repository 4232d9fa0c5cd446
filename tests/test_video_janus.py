"""The janus backend's control path and TURN, against the real servers on 127.0.0.1 (no media).

Janus (Debian ``janus``) is started from the product's generated configuration; a VideoRoom room
is created with the admin key and one token per join link, and a join without a listed token is
refused by Janus itself. coturn (Debian ``coturn``) runs the configuration ``tongban video
turn-config`` writes; a TURN REST credential from ``video.turn`` gets a relay allocation, an
expired or forged one does not.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint
from conftest import ALL_GGCS, Demo, free_port

from engine import scans
from engine.actors import SYSTEM
from storage.db import session_scope
from storage.object_local import LocalStore
from video import links, rooms, turn
from video.backends import janus

KEY = "test-admin-key"


@pytest.fixture(scope="module")
def local_janus(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("janus")
    j = janus.start_local(folder / "cfg", http_port=free_port(), key=KEY, enforce_interfaces="lo")
    yield j
    j.stop()


def test_room_admits_only_listed_tokens(local_janus: janus.LocalJanus, tmp_path: Path) -> None:
    api = janus.VideoRoomAPI(local_janus.url, KEY)
    link = janus.participant_token("r1", "link-A")
    number = api.create_room("r1", rec_dir=tmp_path / "rec", tokens=[link], secret="s1")
    assert number == janus.room_number("r1")
    with pytest.raises(janus.JanusError) as refused:
        janus.VideoRoomAPI(local_janus.url, KEY).join(number, "not-a-link", "陌生人")
    assert refused.value.code == 433
    with pytest.raises(janus.JanusError):
        janus.VideoRoomAPI(local_janus.url, KEY).join(number, None, "陌生人")
    joined = janus.VideoRoomAPI(local_janus.url, KEY).join(number, link, "申请人")
    assert joined["room"] == number
    later = janus.participant_token("r1", "link-B")  # a link issued while the room is open
    api.allow(number, "s1", [later])
    assert janus.VideoRoomAPI(local_janus.url, KEY).join(number, later, "专家")["room"] == number
    # Rooms are created with the admin key only.
    with pytest.raises(janus.JanusError, match="admin_key"):
        api.request({"request": "create", "admin_key": "wrong", "room": 42})
    api.destroy_room(number, "s1")
    with pytest.raises(janus.JanusError):
        janus.VideoRoomAPI(local_janus.url, KEY).join(number, link, "申请人")
    api.close()


def test_turn_rest_credential_is_what_coturn_accepts(tmp_path: Path) -> None:
    exe = shutil.which("turnserver")
    assert exe, "coturn is not installed (./tongban installs it)"
    port = free_port()
    key = b"shared-turn-secret"
    conf = tmp_path / "turnserver.conf"
    conf.write_text(turn.coturn_config(realm="tongban", listening_ip="127.0.0.1", port=port,
                                       relay_ip="127.0.0.1", key=key, allow_loopback=True)
                    + f"pidfile={tmp_path / 'turn.pid'}\nuserdb={tmp_path / 'turndb'}\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async def allocate(cred: turn.TurnCredential) -> tuple[str, int]:
            deadline = time.monotonic() + 10
            while True:
                try:
                    transport, protocol = await create_turn_endpoint(
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

        urls = (f"turn:127.0.0.1:{port}?transport=udp",)
        good = turn.credential("room-1:applicant", urls=urls, ttl=300, key=key)
        assert good is not None and good.ice_server()["urls"] == list(urls)
        relayed = asyncio.run(allocate(good))
        assert relayed[0] == "127.0.0.1"
        expired = turn.credential("room-1:applicant", urls=urls, ttl=-10, key=key)
        forged = turn.credential("room-1:applicant", urls=urls, ttl=300, key=b"another-secret")
        for bad in (expired, forged):
            assert bad is not None
            with pytest.raises((stun.TransactionFailed, ConnectionError, asyncio.TimeoutError)):
                asyncio.run(allocate(bad))
    finally:
        proc.terminate()
        proc.wait(10)


def test_no_turn_urls_no_credential() -> None:
    assert turn.credential("room:applicant", urls=()) is None


@pytest.mark.netns
def test_aiortc_publisher_in_a_janus_room_is_recorded_as_case_evidence(sqlite_demo: Demo, tmp_path: Path) -> None:
    """Media inside the test's own namespace: a participant admitted by its join link publishes
    from aiortc into the Janus room; at close the job converts Janus's ``.mjr`` without
    re-encoding and stores a VP8/Opus WebM as the case's evidence, duration read back by PyAV."""
    import av
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    from flows.recording_janus import store_room_recordings

    demo = sqlite_demo
    number = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")["number"]
    demo.fire("王芳", number, "accept")
    demo.fire("李强", number, "start_inspection")
    r = demo.client.post(f"/api/v1/cases/{number}/video-rooms", headers=demo.h("李强"), json={})
    room_id = r.json()["id"]
    r = demo.client.post(f"/api/v1/video/rooms/{room_id}/links", headers=demo.h("李强"),
                         json={"role": "applicant", "name": "张三"})
    token = r.json()["token"]
    with session_scope(demo.engine) as s:
        claim = links.verify(token)
        pid, _ = rooms.record_join(s, rooms.admit(s, claim), claim)

    j = janus.start_local(tmp_path / "cfg", http_port=free_port(), key=KEY, enforce_interfaces="tb0")
    try:
        api = janus.VideoRoomAPI(j.url, KEY)
        link = janus.participant_token(room_id, token)
        number_j = api.create_room(room_id, rec_dir=tmp_path / "rec", tokens=[link], secret="s2")
        pub = janus.VideoRoomAPI(j.url, KEY)
        pub.join(number_j, link, "张三", publisher=janus.publisher_number(pid))

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
        api.destroy_room(number_j, "s2")  # closes the room's recordings
        deadline = time.monotonic() + 10
        while len(list((tmp_path / "rec").glob("*.mjr"))) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        j.stop()
    objects = LocalStore(tmp_path / "objects")
    stored = store_room_recordings(demo.engine, room_id, tmp_path / "rec", tmp_path / "out", objects)
    assert len(stored) == 1 and stored[0]["content_type"] == "video/webm"
    assert 1.0 < stored[0]["duration_s"] < 6.0, stored[0]["duration_s"]
    webm = next((tmp_path / "out").glob("*.webm"))
    with av.open(str(webm)) as f:
        assert {st.type: st.codec_context.name for st in f.streams} == {"video": "vp8", "audio": "opus"}
    assert store_room_recordings(demo.engine, room_id, tmp_path / "rec", tmp_path / "out2", objects) == []
    with session_scope(demo.engine) as s:
        evidence = scans.list_evidence(s, number, SYSTEM)
    assert [e["kind"] for e in evidence] == ["recording"]
    assert evidence[0]["sha256"] == stored[0]["sha256"]
    events = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("李强")).json()["items"]
    assert "video_recording" in [e["kind"] for e in events]


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


@pytest.mark.netns
def test_relay_only_ice_connects_through_coturn(tmp_path: Path) -> None:
    """``iceTransportPolicy: relay`` on both peers (no host candidates at all): media and data
    still flow, through a real coturn running the product's configuration in the namespace."""
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    exe = shutil.which("turnserver")
    assert exe, "coturn is not installed (./tongban installs it)"
    port, key = free_port(), b"relay-secret"
    conf = tmp_path / "turnserver.conf"
    conf.write_text(turn.coturn_config(realm="tongban", listening_ip="127.0.0.1", port=port,
                                       relay_ip="127.0.0.1", key=key, allow_loopback=True)
                    + f"pidfile={tmp_path / 'turn.pid'}\nuserdb={tmp_path / 'turndb'}\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = (f"turn:127.0.0.1:{port}?transport=udp",)

        def config(who: str) -> RTCConfiguration:
            cred = turn.credential(who, urls=url, ttl=300, key=key)
            assert cred is not None
            return RTCConfiguration([RTCIceServer(list(cred.urls), cred.username, cred.credential)],
                                    iceTransportPolicy=RTCIceTransportPolicy.RELAY)

        async def run() -> tuple[str, list[str]]:
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
