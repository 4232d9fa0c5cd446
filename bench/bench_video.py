"""Video benchmark: both media backends in one run, on the same cores: how many recorded rooms fit.

For each backend (``aiortc``, the embedded default, and ``janus``, Janus VideoRoom as an SFU) the
server is the product itself (uvicorn subprocess, SQLite, local object store, all in a temporary
directory; for ``janus`` also a local Janus from the product's generated configuration, started
with ``video.backends.janus.start_local``); participants are aiortc peers in this process. To
keep the load generator from eating the cores it measures, publishers send a pre-encoded
640x480 VP8 loop (30 fps, a key frame each second) instead of encoding, plus a 440 Hz Opus tone,
and receivers count complete frames without decoding them (``CountingDecoder``).

* ``video.<backend>.join_to_first_frame_ms``: median time from the join request (Tongban's join
  link check, for Janus also its session, publish and subscribe) until the first frame of the
  other participant arrives, in a fresh two-party room each time, sequential.
* ``video.<backend>.server_cpu_per_recorded_two_party_room``: server CPU (utime+stime from /proc
  of uvicorn, plus Janus for ``janus``) with one recorded two-party room running.
* ``video.<backend>.max_recorded_two_party_rooms``: rooms of two publishers (each views the
  other; the server records both) added one at a time while less than 1 % of the frames sent
  over the measuring window go undelivered (all viewers together; the worst viewer is noted).
  The rooms are spread over ``--generators`` load generator processes (one Python event loop
  each); their CPU is noted per step: when they near their cores, the count is the generator's
  limit, not the server's, and the result says so.

The whole benchmark (servers and peers) re-runs itself in a network namespace of its own
(``unshare --net``, needs root): ``lo`` and a veth pair with 10.77.0.1, nothing routed out, so
ICE's host candidates and all media stay inside it instead of using the machine's interfaces.

Writes ``bench/results/video.json`` in the shared benchmark shape and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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

from aiortc import rtcrtpreceiver  # noqa: E402

from video.backends import janus  # noqa: E402
from video.client import JanusPeer, Participant, wait_until  # noqa: E402
from video.synthetic import ToneTrack  # noqa: E402

LOSS = 0.01  # a room count holds while less than 1 % of the frames go undelivered
JANUS_KEY = "bench-janus-admin-key"
TONE: list[bytes] = []  # the pre-encoded microphone (encode_tone), made once per run

FPS = 30
VIDEO_TB = Fraction(1, 90000)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- load generator: a pre-encoded camera ------------------------------------------------------
async def encode_loop(width: int = 640, height: int = 480, frames: int = FPS) -> list[bytes]:
    from video.synthetic import PatternTrack

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


def encode_tone(frames: int = 50) -> list[bytes]:
    """A second of the 440 Hz tone as Opus packets (20 ms each), encoded once."""
    from aiortc.codecs.opus import OpusEncoder

    tone, enc, out = ToneTrack(), OpusEncoder(), []
    for i in range(frames):
        f = av.AudioFrame(format="s16", layout="mono", samples=tone.samples)
        f.planes[0].update(tone.pcm)
        f.sample_rate, f.pts, f.time_base = 48000, i * tone.samples, Fraction(1, 48000)
        out += enc.encode(f)[0]
    return out


class EncodedMicrophone(MediaStreamTrack):
    """Sends the pre-encoded tone as packets, paced at 20 ms: no Opus encoder per publisher."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets, self.n, self.start = packets, 0, None

    async def recv(self) -> av.Packet:
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.n * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        p = av.Packet(self.packets[self.n % len(self.packets)])
        p.pts, p.time_base = self.n * 960, Fraction(1, 48000)
        self.n += 1
        return p


class CountingDecoder:
    """The load generator's receivers: one tiny frame per complete encoded frame, no decoding
    (what a received frame costs the generator should not limit what the server is shown to hold)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def decode(self, encoded: Any) -> list[Any]:
        if self.kind == "video":
            frame: Any = av.VideoFrame(16, 16, "yuv420p")
            frame.time_base = VIDEO_TB
        else:
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.sample_rate, frame.time_base = 48000, Fraction(1, 48000)
        frame.pts = encoded.timestamp
        return [frame]


rtcrtpreceiver.get_decoder = lambda codec: CountingDecoder(codec.mimeType.split("/")[0].lower())


def generator_cpu() -> float:
    t = os.times()
    return t.user + t.system


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


def prepare(tmp: Path, backend: str, janus_url: str = "") -> tuple[dict[str, str], dict[str, str]]:
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp / 'tongban.db'}",
           "TONGBAN_DATA_DIR": str(tmp), "TONGBAN_OBJECT_DIR": str(tmp / "objects"),
           "TONGBAN_VIDEO_SECRET": "bench-secret", "TONGBAN_MAX_BODY_BYTES": "1000000",
           "TONGBAN_VIDEO_BACKEND": backend, "TONGBAN_JANUS_URL": janus_url,
           "TONGBAN_JANUS_ADMIN_KEY": JANUS_KEY}
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
    def __init__(self, env: dict[str, str], others: tuple[int, ...] = ()) -> None:
        self.others = others  # more processes of the server side (Janus)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:serve_app", "--factory", "--host",
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
        total = 0.0
        for pid in (self.proc.pid, *self.others):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

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
            "applicant": {"name": "基准测试", "kind": "company"}, "materials": {},
            "situation": {"application_kind": "new", "aircon": "absent", "agent": "self"}})
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


Peer = Participant | JanusPeer


def peer(backend: str, base: str, token: str, tracks: list[MediaStreamTrack], view_others: bool = True) -> Peer:
    cls = JanusPeer if backend == "janus" else Participant
    return cls(base, token, tracks, view_others=view_others)


def receiving(ps: list[Peer]) -> bool:
    return all(any(r.frames > 5 for r in p.received.values()) for p in ps)


# -- measurements --------------------------------------------------------------------------------
async def first_frame(backend: str, base: str, rooms: Rooms, packets: list[bytes], n: int) -> list[float]:
    """Join to the first frame of the other participant, in a fresh two-party room each time."""
    times = []
    for _ in range(n):
        a_tok, b_tok = rooms.new_room(["clerk", "applicant"])
        a = peer(backend, base, a_tok, [EncodedCamera(packets), EncodedMicrophone(TONE)], view_others=False)
        await a.join()
        await asyncio.wait_for(a.connected.wait(), 20)
        b = peer(backend, base, b_tok, [EncodedMicrophone(TONE)])
        started = time.perf_counter()
        await b.join()
        await wait_until(lambda b=b: any(r.frames > 0 for r in b.received.values()), 20, step=0.005)
        first = min(r.first_at for r in b.received.values() if r.first_at is not None)
        times.append((first - started) * 1000)
        for x in (b, a):
            await x.close()
    return times


# -- the load generator's processes (forked before any event loop: each runs its own) -------
def generator_main(conn: Any) -> None:
    asyncio.run(_generator(conn))


async def _generator(conn: Any) -> None:
    global TONE
    packets = await encode_loop()
    TONE = encode_tone()
    loop = asyncio.get_running_loop()
    live: list[Peer] = []
    while True:
        cmd, arg = await loop.run_in_executor(None, conn.recv)
        if cmd == "room":  # one two-party room: both publish and view each other
            backend, base, tokens = arg
            pair = [peer(backend, base, t, [EncodedCamera(packets), EncodedMicrophone(TONE)]) for t in tokens]
            for x in pair:
                await x.join()
            live += pair
            try:
                await wait_until(lambda pair=pair: receiving(pair), 30)
                conn.send(True)
            except TimeoutError:
                conn.send(False)
        elif cmd == "counts":
            conn.send(([sum(r.frames for r in x.received.values()) for x in live], generator_cpu(), time.monotonic()))
        elif cmd == "close":
            for x in live:
                await x.close()
            live = []
            conn.send(True)
        else:
            conn.send(True)
            return


class Generators:
    def __init__(self, n: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conns, self.procs = [], []
        for _ in range(n):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=generator_main, args=(there,), daemon=True)
            proc.start()
            self.conns.append(here)
            self.procs.append(proc)

    async def call(self, i: int, cmd: str, arg: Any = None) -> Any:
        self.conns[i].send((cmd, arg))
        return await asyncio.get_running_loop().run_in_executor(None, self.conns[i].recv)

    async def counts(self) -> tuple[list[tuple[int, float]], float]:
        """Each viewer's frames so far with the moment its process counted them, and the CPU."""
        got = [await self.call(i, "counts") for i in range(len(self.conns))]
        return [(c, at) for frames, _, at in got for c in frames], sum(cpu for _, cpu, _ in got)

    def stop(self) -> None:
        for i, conn in enumerate(self.conns):
            conn.send(("stop", None))
            self.procs[i].join(10)


async def room_capacity(backend: str, base: str, rooms: Rooms, gens: Generators, max_rooms: int,
                        seconds: float, server: Server) -> tuple[int, list[dict[str, float]], bool]:
    steps: list[dict[str, float]] = []
    best, generator_bound, n = 0, False, len(gens.conns)
    for k in range(1, max_rooms + 1):
        if not await gens.call(k % n, "room", (backend, base, rooms.new_room(["clerk", "applicant"]))):
            log(f"  {k} rooms: not every viewer receives within 30 s")
            steps.append({"rooms": k, "delivered": 0.0, "worst_viewer": 0.0, "server_cpu_pct": -1})
            break
        await asyncio.sleep(1.0)
        before, g0 = await gens.counts()
        c0, t0 = server.cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        after, g1 = await gens.counts()
        elapsed = time.monotonic() - t0
        cpu = (server.cpu_seconds() - c0) / elapsed * 100
        gen = (g1 - g0) / elapsed * 100
        # Frames against what was sent over each viewer's own window (its process's two counts).
        got = [b - a for (a, _), (b, _) in zip(before, after, strict=True)]
        sent = [FPS * (tb - ta) for (_, ta), (_, tb) in zip(before, after, strict=True)]
        worst = min(g / x for g, x in zip(got, sent, strict=True))
        delivered = sum(got) / sum(sent)
        steps.append({"rooms": k, "delivered": round(delivered, 4), "worst_viewer": round(worst, 3),
                      "server_cpu_pct": round(cpu, 1), "load_generator_cpu_pct": round(gen, 1)})
        log(f"  {backend} {k} rooms: {delivered:.2%} of frames delivered (worst viewer {worst:.1%}), "
            f"server CPU {cpu:.0f}%, load generator {gen:.0f}% ({n} processes)")
        if delivered < 1 - LOSS:
            generator_bound = gen > 85 * n
            break
        best = k
    for i in range(n):
        await gens.call(i, "close")
    return best, steps, generator_bound


def record(metric: str, value: float, unit: str, better: str, setup: str) -> dict[str, Any]:
    return {"metric": metric, "value": round(value, 2), "unit": unit, "better": better,
            "baseline": None, "setup": setup}


async def measure(backend: str, args: argparse.Namespace, packets: list[bytes],
                  gens: Generators) -> list[dict[str, Any]]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=f"tongban-bench-video-{backend}-") as tmpdir:
        local = None
        if backend == "janus":
            local = janus.start_local(Path(tmpdir) / "janus", http_port=free_port(), key=JANUS_KEY,
                                      enforce_interfaces="tb0")
        try:
            env, tokens = prepare(Path(tmpdir), backend, local.url if local else "")
            server = Server(env, (local.process.pid,) if local else ())
            try:
                rooms = Rooms(server.base, tokens)
                log(f"{backend}: join to first frame, {args.joins} sequential two-party rooms")
                lat = await first_frame(backend, server.base, rooms, packets, args.joins)
                log(f"  median {statistics.median(lat):.0f} ms")
                cap = args.max_rooms if backend == "aiortc" else args.max_janus_rooms
                log(f"{backend}: up to {cap} recorded two-party rooms, {args.seconds}s windows")
                best, steps, generator_bound = await room_capacity(backend, server.base, rooms, gens, cap,
                                                                   args.seconds, server)
            finally:
                server.stop()
        finally:
            if local is not None:
                local.stop()
    what = "aiortc in the server (decodes, re-encodes per viewer, transcodes recordings)" if backend == "aiortc" \
        else "Janus VideoRoom (forwards without decoding, records .mjr) + the Tongban server"
    setup = (f"{what}; uvicorn, sqlite; load generator (aiortc peers, {args.generators} processes) on the same "
             f"{os.cpu_count()} cores, 640x480 VP8 30 fps pre-encoded; {platform.machine()}; load average "
             f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the machine skews the count)")
    held = setup + ("; capped by --max-rooms" if best == cap else "") + (
        "; the load generator's core was the limit, not the server" if generator_bound else "")
    out = [record(f"video.{backend}.join_to_first_frame_ms", statistics.median(lat), "ms", "lower", setup),
           record(f"video.{backend}.server_cpu_per_recorded_two_party_room",
                  steps[0]["server_cpu_pct"], "% of one core", "lower", setup),
           record(f"video.{backend}.max_recorded_two_party_rooms", best, "rooms", "higher", held)]
    out[0]["samples_ms"] = [round(x) for x in lat]
    out[-1]["steps"] = steps
    return out


async def run(args: argparse.Namespace, gens: Generators) -> list[dict[str, Any]]:
    global TONE
    packets = await encode_loop()
    TONE = encode_tone()
    out: list[dict[str, Any]] = []
    for backend in args.backends:
        out += await measure(backend, args, packets, gens)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    ap.add_argument("--backends", nargs="+", default=["aiortc", "janus"], choices=["aiortc", "janus"])
    ap.add_argument("--joins", type=int, default=9)
    ap.add_argument("--max-rooms", type=int, default=8, help="cap for the aiortc backend")
    ap.add_argument("--max-janus-rooms", type=int, default=40, help="cap for the janus backend")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--generators", type=int, default=2, help="load generator processes")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video.json")
    args = ap.parse_args()
    enter_private_network()
    if args.quick:
        args.joins, args.max_rooms, args.max_janus_rooms, args.seconds = 2, 2, 3, 3.0
    gens = Generators(args.generators)  # forked now, before this process runs an event loop
    try:
        results = asyncio.run(run(args, gens))
    finally:
        gens.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    print(f"{'metric':52} {'value':>10}  unit")
    for r in results:
        print(f"{r['metric']:52} {r['value']:>10}  {r['unit']}")


if __name__ == "__main__":
    main()
