"""Private copies of relayed frames.

MediaRelay hands the same frame object to every subscriber, and aiortc's encoders (through
PyAV) rewrite a frame's pts and time base in place while encoding in worker threads. Two
viewers of one publisher would then race on one frame and a VP8 encoder fails on the torn
timestamps, ending that viewer's stream. Each viewer therefore gets its own copy (a memcpy,
small next to an encode). Video copies are also re-stamped on a monotonic 90 kHz wall clock:
a decoder may hand out a late (retransmitted) frame older than the one before, and libvpx
refuses a pts below the first it saw ("pts is smaller than initial pts"), ending the stream.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack

CLOCK = 90_000
TIME_BASE = Fraction(1, CLOCK)


def copy_frame(frame: Any) -> Any:
    """A new frame with the same picture or samples (PyAV's reformat would return the same object)."""
    if isinstance(frame, av.VideoFrame):
        out = av.VideoFrame(frame.width, frame.height, frame.format.name)
        for dst, src in zip(out.planes, frame.planes, strict=True):
            if dst.line_size == src.line_size:
                dst.update(src)
                continue
            # Decoders pad rows differently from a fresh frame: copy row by row.
            d, sv, row = memoryview(dst), memoryview(src), min(dst.line_size, src.line_size)
            for y in range(dst.height):
                d[y * dst.line_size:y * dst.line_size + row] = sv[y * src.line_size:y * src.line_size + row]
    else:
        out = av.AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=frame.samples)
        out.sample_rate = frame.sample_rate
        for dst, src in zip(out.planes, frame.planes, strict=True):
            data = bytes(src)[:dst.buffer_size]
            dst.update(data + bytes(dst.buffer_size - len(data)))
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


class CopyTrack(MediaStreamTrack):
    """A relay subscription whose frames belong to this subscriber alone."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.t0: float | None = None
        self.last_pts = -1

    async def recv(self) -> Any:
        frame = copy_frame(await self.source.recv())
        if self.kind == "video":
            now = time.monotonic()
            self.t0 = self.t0 if self.t0 is not None else now
            self.last_pts = max(self.last_pts + 1, int((now - self.t0) * CLOCK))
            frame.pts, frame.time_base = self.last_pts, TIME_BASE
        return frame

    def stop(self) -> None:
        super().stop()
        self.source.stop()
