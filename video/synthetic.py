"""Synthetic camera and microphone for tests and the benchmark (no devices needed)."""

from __future__ import annotations

import array
import fractions
import math

import av
from aiortc import AudioStreamTrack, VideoStreamTrack
from PIL import Image, ImageDraw

AUDIO_RATE = 48000
AUDIO_PTIME = 0.02
BARS = [(235, 235, 235), (235, 235, 16), (16, 235, 235), (16, 235, 16),
        (235, 16, 235), (235, 16, 16), (16, 16, 235), (16, 16, 16)]


class PatternTrack(VideoStreamTrack):
    """Colour bars with a moving block, paced at 30 fps by aiortc's clock.

    A short loop of frames is rendered up front so the generator costs little CPU: the
    benchmark should measure the server, not the test camera.
    """

    def __init__(self, width: int = 640, height: int = 480, loop: int = 30) -> None:
        super().__init__()
        self.frames = []
        size = max(8, height // 6)
        step = max(1, width // len(BARS))
        for i in range(loop):
            img = Image.new("RGB", (width, height))
            draw = ImageDraw.Draw(img)
            for j, c in enumerate(BARS):
                draw.rectangle([j * step, 0, (j + 1) * step - 1, height], fill=c)
            x = (i * (width - size)) // max(1, loop - 1)
            draw.rectangle([x, height // 2 - size // 2, x + size, height // 2 + size // 2],
                           fill=(255, 128, 0))
            yuv = av.VideoFrame.from_image(img).reformat(format="yuv420p")
            self.frames.append([bytes(p) for p in yuv.planes])
        self.size = (width, height)
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        # A fresh frame each time: encoders may hold on to the previous one.
        frame = av.VideoFrame(*self.size, "yuv420p")
        for plane, data in zip(frame.planes, self.frames[self.sent % len(self.frames)], strict=True):
            plane.update(data)
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone (aiortc's AudioStreamTrack is silence; a tone proves audio is recorded)."""

    def __init__(self) -> None:
        super().__init__()
        n = int(AUDIO_RATE * AUDIO_PTIME)
        self.pcm = array.array("h", (int(3000 * math.sin(2 * math.pi * 440 * i / AUDIO_RATE))
                                     for i in range(n))).tobytes()
        self.samples = n

    async def recv(self) -> av.AudioFrame:
        base = await super().recv()  # keeps aiortc's pacing and timestamps
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples)
        frame.planes[0].update(self.pcm)
        frame.sample_rate, frame.pts = AUDIO_RATE, base.pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame
