"""Video benchmark: how fast a participant gets in, what relaying costs, how many rooms fit.

The server is the product itself (uvicorn subprocess, SQLite, local object store, all in a
temporary directory); participants are aiortc peers in this process. To keep the load
generator from eating the cores it measures, publishers send a pre-encoded 640x480 VP8 loop
(30 fps, a key frame each second) instead of encoding, plus a 440 Hz Opus tone.

* ``video.offer_to_connected_ms``: median time from creating the offer to the connection
  being up (HTTP offer/answer, ICE, DTLS), sequential joins.

The whole benchmark (server and peers) re-runs itself in a network namespace of its own
(``unshare --net``, needs root): ``lo`` and a veth pair with 10.77.0.1, nothing routed out, so
ICE's host candidates and all media stay inside it instead of using the machine's interfaces.
* ``video.server_cpu_per_relayed_stream``: server CPU (utime+stime of the server process,
  from /proc) per viewer of one 480p publisher, from 1 and from N viewers (the difference /
  (N-1)), so recording and decoding of the publisher are not counted.
* ``video.server_cpu_per_recorded_two_party_room``: server CPU with one such room running.
* ``video.max_recorded_two_party_rooms``: rooms of two publishers (each views the other; the
  server records both) added one at a time until more than 5% of the frames sent over the
  measuring window are not delivered (all viewers together; the worst viewer is noted).
  The load generator shares the 2 cores (noted in setup, with the load average).

Writes ``bench/results/video.json`` in the shared benchmark shape and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
from aiortc.mediastreams import MediaStreamTrack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video.client import Participant, wait_until  # noqa: E402
from video.synthetic import PatternTrack, ToneTrack  # noqa: E402

FPS = 30
VIDEO_TB = Fraction(1, 90000)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- load generator: a pre-encoded camera ------------------------------------------------------
async def encode_loop(width: int = 640, height: int = 480, frames: int = FPS) -> list[bytes]:
    track = PatternTrack(width, height, loop=frames)
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.bit_rate, ctx.gop_size = 900_000, frames
    ctx.time_base = VIDEO_TB
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[bytes] = []
    for _ in range(frames):
        frame = await track.recv()
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return out[:frames]


class EncodedCamera(MediaStreamTrack):
    """Sends the pre-encoded loop as packets: aiortc packetises them without encoding."""

    kind = "video"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets, self.n, self.start = packets, 0, None

    async def recv(self) -> av.Packet:
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.n / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        p = av.Packet(self.packets[self.n % len(self.packets)])
        p.pts, p.time_base = self.n * (90000 // FPS), VIDEO_TB
        self.n += 1
        return p


# -- a network of its own -----------------------------------------------------------------------
NETNS_ADDRESS = "10.77.0.1"
NETNS_SETUP = ("ip link set lo up && ip link add tb0 type veth peer name tb1 && "
               f"ip addr add {NETNS_ADDRESS}/24 dev tb0 && ip link set tb0 up && ip link set tb1 up")


def enter_private_network() -> None:
    """Re-run this script in a fresh network namespace; inside it, check what ICE would offer."""
    if os.environ.get("TONGBAN_BENCH_NETNS") != "1":
        if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
            sys.exit("bench_video runs its peers in a network namespace of its own (unshare --net): "
                     "run it as root on Linux with util-linux and iproute2")
        env = {**os.environ, "TONGBAN_BENCH_NETNS": "1"}
        os.execvpe("unshare", ["unshare", "--net", "--", "sh", "-c", NETNS_SETUP + ' && exec "$@"', "sh",
                               sys.executable, *sys.argv], env)
    from aioice.ice import get_host_addresses

    found = get_host_addresses(use_ipv4=True, use_ipv6=True)
    if found != [NETNS_ADDRESS]:
        sys.exit(f"bench_video: expected only {NETNS_ADDRESS} inside its namespace, found {found}")
    log(f"network namespace of its own: ICE host candidates {found}")


# -- the server under test ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(tmp: Path) -> tuple[dict[str, str], dict[str, str]]:
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp / 'tongban.db'}",
           "TONGBAN_DATA_DIR": str(tmp), "TONGBAN_OBJECT_DIR": str(tmp / "objects"),
           "TONGBAN_VIDEO_SECRET": "bench-secret", "TONGBAN_MAX_BODY_BYTES": "1000000"}
    code = (
        "import json,sys; from pathlib import Path\n"
        "from storage.db import make_engine, session_scope\nfrom storage import migrate\n"
        "from engine.demo import seed\nfrom core.settings import ROOT\n"
        f"e = make_engine({env['TONGBAN_DATABASE_URL']!r}); migrate.upgrade(e)\n"
        "with session_scope(e) as s:\n"
        "    t = seed(s, ROOT/'catalog'/'items', ROOT/'catalog'/'alliance.yaml',"
        f" Path({str(tmp / 'tokens.json')!r}), 30)\n"
        "print(json.dumps({x['name']: x['token'] for x in t}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return env, json.loads(out.stdout.strip().splitlines()[-1])


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
             "127.0.0.1", "--port", str(self.port), "--log-level", "warning", "--lifespan", "off"],
            cwd=ROOT, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.base + "/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Rooms:
    """Cases and rooms through the clerk API (ad hoc consultations on fresh cases)."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.h = {"Authorization": f"Bearer {tokens['王芳']}"}

    def new_room(self, roles: list[str]) -> list[str]:
        r = self.http.post("/api/v1/cases", headers=self.h, json={
            "item_code": "GGCSWSXK", "competent_region": "370211",
            "applicant": {"name": "基准测试", "kind": "company"}, "materials": {}})
        r.raise_for_status()
        number = r.json()["number"]
        room = self.http.post(f"/api/v1/cases/{number}/video-rooms", headers=self.h, json={})
        room.raise_for_status()
        rid = room.json()["id"]
        out = []
        for i, role in enumerate(roles):
            link = self.http.post(f"/api/v1/video/rooms/{rid}/links", headers=self.h,
                                  json={"role": role, "name": f"{role}{i}"})
            link.raise_for_status()
            out.append(link.json()["token"])
        return out


def receiving(ps: list[Participant]) -> bool:
    return all(any(r.frames > 5 for r in p.received.values()) for p in ps)


# -- measurements --------------------------------------------------------------------------------
async def join_latency(base: str, rooms: Rooms, n: int) -> list[float]:
    times = []
    for _ in range(n):
        (token,) = rooms.new_room(["applicant"])
        p = Participant(base, token, [ToneTrack()], view_others=False)
        await p.join()
        await asyncio.wait_for(p.connected.wait(), 20)
        times.append((p.offer_to_connected or 0) * 1000)
        await p.close()
    return times


async def relay_cost(base: str, rooms: Rooms, server: Server, packets: list[bytes], viewers: int,
                     seconds: float) -> float:
    """Server CPU (% of one core) per extra viewer of one 480p publisher."""
    tokens = rooms.new_room(["clerk"] + ["expert"] * viewers)
    pub = Participant(base, tokens[0], [EncodedCamera(packets)], view_others=False)
    await pub.join()
    await asyncio.wait_for(pub.connected.wait(), 20)

    async def measure() -> float:
        await asyncio.sleep(1.5)  # let the new streams settle
        c0, t0 = server.cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        return (server.cpu_seconds() - c0) / (time.monotonic() - t0) * 100

    first = Participant(base, tokens[1])
    await first.join()
    await wait_until(lambda: any(r.frames > 5 for r in first.received.values()))
    one = await measure()
    rest = [Participant(base, t) for t in tokens[2:]]
    for v in rest:
        await v.join()
    await wait_until(lambda: receiving(rest), 30)
    many = await measure()
    for v in [first, *rest, pub]:
        await v.close()
    return (many - one) / max(1, viewers - 1)


async def room_capacity(base: str, rooms: Rooms, packets: list[bytes], max_rooms: int,
                        seconds: float, server: Server) -> tuple[int, list[dict[str, float]]]:
    live: list[Participant] = []
    steps: list[dict[str, float]] = []
    best = 0
    for k in range(1, max_rooms + 1):
        a_tok, b_tok = rooms.new_room(["clerk", "applicant"])
        pair = [Participant(base, a_tok, [EncodedCamera(packets), ToneTrack()]),
                Participant(base, b_tok, [EncodedCamera(packets), ToneTrack()])]
        for p in pair:
            await p.join()
        live += pair
        await wait_until(lambda ps=list(live): receiving(ps), 30)
        await asyncio.sleep(1.0)
        before = [sum(r.frames for r in p.received.values()) for p in live]
        c0, t0 = server.cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        cpu = (server.cpu_seconds() - c0) / elapsed * 100
        got = [sum(r.frames for r in p.received.values()) - b for p, b in zip(live, before, strict=True)]
        worst = min(got) / (FPS * elapsed)
        delivered = sum(got) / (FPS * elapsed * len(got))
        steps.append({"rooms": k, "delivered": round(delivered, 3), "worst_viewer": round(worst, 3),
                      "server_cpu_pct": round(cpu, 1)})
        log(f"  {k} rooms: {delivered:.1%} of frames delivered (worst viewer {worst:.1%}), "
            f"server CPU {cpu:.0f}%")
        if delivered < 0.95:
            break
        best = k
    for p in live:
        await p.close()
    return best, steps


def record(metric: str, value: float, unit: str, better: str, setup: str) -> dict[str, Any]:
    return {"metric": metric, "value": round(value, 2), "unit": unit, "better": better,
            "baseline": None, "setup": setup}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tongban-bench-video-") as tmpdir:
        env, tokens = prepare(Path(tmpdir))
        server = Server(env)
        try:
            rooms = Rooms(server.base, tokens)
            packets = await encode_loop()
            log(f"joins: {args.joins} sequential")
            lat = await join_latency(server.base, rooms, args.joins)
            log(f"  median {statistics.median(lat):.0f} ms")
            log(f"relay: 1 publisher, 1 then {args.viewers} viewers")
            per_stream = await relay_cost(server.base, rooms, server, packets, args.viewers, args.seconds)
            log(f"  {per_stream:.1f}% of a core per relayed stream")
            log(f"rooms: up to {args.max_rooms} two-party recorded rooms, {args.seconds}s windows")
            best, steps = await room_capacity(server.base, rooms, packets, args.max_rooms,
                                              args.seconds, server)
        finally:
            server.stop()
    setup = (f"aiortc server (uvicorn, sqlite) + load generator on the same {os.cpu_count()} cores, "
             f"640x480 VP8 30 fps, {platform.machine()}; load average {load_before:.1f} before, "
             f"{os.getloadavg()[0]:.1f} after (other work on the machine skews the room count)")
    out = [record("video.offer_to_connected_ms", statistics.median(lat), "ms", "lower", setup),
           record("video.server_cpu_per_relayed_stream", per_stream, "% of one core", "lower", setup),
           record("video.server_cpu_per_recorded_two_party_room", steps[0]["server_cpu_pct"],
                  "% of one core", "lower", setup),
           record("video.max_recorded_two_party_rooms", best, "rooms", "higher",
                  setup + ("; capped by --max-rooms" if best == args.max_rooms else ""))]
    out[-1]["steps"] = steps
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    ap.add_argument("--joins", type=int, default=15)
    ap.add_argument("--viewers", type=int, default=4)
    ap.add_argument("--max-rooms", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video.json")
    args = ap.parse_args()
    enter_private_network()
    if args.quick:
        args.joins, args.viewers, args.max_rooms, args.seconds = 3, 2, 2, 3.0
    results = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    print(f"{'metric':42} {'value':>10}  unit")
    for r in results:
        print(f"{r['metric']:42} {r['value']:>10}  {r['unit']}")


if __name__ == "__main__":
    main()
