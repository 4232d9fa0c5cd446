"""Record one participant's audio and video into an mp4 file (H.264 + AAC).

Unlike aiortc's MediaRecorder this encodes in the thread pool (the event loop keeps relaying
while x264 works), starts the file on the first video frame (so the header has the real frame
size), puts both tracks on one wall-clock origin, and counts frames for the benchmark.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from video.frames import copy_frame

VIDEO_RATE = 30
AUDIO_RATE = 48000
VIDEO_CLOCK = 90000


@dataclass
class RecordingResult:
    path: Path
    duration_s: float
    sha256: str
    size: int
    video_frames: int
    audio_frames: int


class Recorder:
    def __init__(self, path: Path, tracks: list[MediaStreamTrack]) -> None:
        self.path = path
        self.container: Any = av.open(str(path), mode="w", format="mp4")
        self.tracks = tracks
        self.video = next((t for t in tracks if t.kind == "video"), None)
        self.streams: dict[str, Any] = {}
        for t in tracks:
            if t.kind == "video":
                s = self.container.add_stream("libx264", rate=VIDEO_RATE)
                s.pix_fmt = "yuv420p"
                # Evidence, not broadcast: favour low CPU over compression ratio.
                s.options = {"preset": "ultrafast", "tune": "zerolatency"}
                # Frames are stamped on a 90 kHz clock: jittery arrivals never collide on a tick.
                s.codec_context.time_base = Fraction(1, VIDEO_CLOCK)
                s.time_base = Fraction(1, VIDEO_CLOCK)
            else:
                s = self.container.add_stream("aac", rate=AUDIO_RATE)
                s.layout = "stereo"
            self.streams[t.kind] = s
        self.t0: float | None = None
        self.started = asyncio.Event()
        if self.video is None:
            self.t0 = time.monotonic()
            self.started.set()
        self.tasks: list[asyncio.Task[None]] = []
        self.end_s = 0.0
        self.counts = {"video": 0, "audio": 0}
        self.resampler: Any = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")
        self.audio_pts = 0

    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self._run(t)) for t in self.tracks]

    async def _encode(self, fn: Any, *args: Any) -> list[Any]:
        # One worker per file: a codec context must never be used by two threads at once.
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def _run(self, track: MediaStreamTrack) -> None:
        stream = self.streams[track.kind]
        offset: int | None = None
        last_pts = -1
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video" and not self.started.is_set():
                stream.width, stream.height = frame.width, frame.height
                self.t0 = time.monotonic()
                self.started.set()
            elif track.kind == "audio" and not self.started.is_set():
                continue  # audio before the first picture is dropped: the file starts with video
            elapsed = time.monotonic() - (self.t0 or 0.0)
            if track.kind == "audio":
                if offset is None:  # audio starts late by the wall-clock gap to the first picture
                    offset = int(elapsed * AUDIO_RATE)
                packets = await self._encode(self._encode_audio, stream, frame, offset)
            else:
                # Relayed frames are shared with the viewers' encoders, which may rewrite their
                # pts concurrently: copy the picture and stamp it by the wall clock instead.
                copy = copy_frame(frame)
                last_pts = max(last_pts + 1, int(elapsed * VIDEO_CLOCK))
                copy.pts, copy.time_base = last_pts, Fraction(1, VIDEO_CLOCK)
                packets = await self._encode(stream.encode, copy)
            self.counts[track.kind] += 1
            self._mux(packets)

    def _encode_audio(self, stream: Any, frame: Any, offset: int) -> list[Any]:
        """AAC wants 1024-sample fltp frames; their pts count samples from the file's start."""
        if self.resampler is None:
            self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE,
                                               frame_size=1024)
            self.audio_pts = max(0, offset)
        packets = []
        for out in self.resampler.resample(frame):
            out.pts, out.time_base = self.audio_pts, Fraction(1, AUDIO_RATE)
            self.audio_pts += out.samples
            packets += stream.encode(out)
        return packets

    def _mux(self, packets: list[Any]) -> None:
        for p in packets:
            if p.pts is not None and p.time_base is not None:
                end = p.pts + (p.duration or 0)
                self.end_s = max(self.end_s, float(end * Fraction(p.time_base)))
            self.container.mux(p)

    async def stop(self) -> RecordingResult | None:
        """Finish the file; None when not a single video frame arrived (nothing to keep)."""
        for track in self.tracks:
            track.stop()  # the readers end after their in-flight frame
        _, pending = await asyncio.wait(self.tasks, timeout=5) if self.tasks else (set(), set())
        for task in pending:
            task.cancel()
        started = self.started.is_set() and sum(self.counts.values()) > 0
        if started:
            for s in self.streams.values():
                if s.codec_context.is_open:
                    self._mux(await self._encode(s.encode, None))
        self.pool.shutdown(wait=True)
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - an empty container may fail to finalise; dropped below
            started = False
        # An audio-only participant who leaves early: the MP4 muxer may never have written the file.
        if not started or not self.path.exists():
            self.path.unlink(missing_ok=True)
            return None
        data = self.path.read_bytes()
        return RecordingResult(self.path, round(self.end_s, 3), hashlib.sha256(data).hexdigest(),
                               len(data), self.counts["video"], self.counts["audio"])


def probe_duration(path: Path) -> float:
    """Duration as a player sees it (PyAV): the longest stream's last frame end."""
    with av.open(str(path)) as c:
        if c.duration:
            return c.duration / 1_000_000
        return max(float(s.duration * s.time_base) for s in c.streams if s.duration)
