"""A still from a live video track, as a JPEG page (拍照存档)."""

from __future__ import annotations

import asyncio
import io

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from engine.errors import Conflict

JPEG_QUALITY = 90


async def grab_jpeg(track: MediaStreamTrack, timeout: float = 5.0) -> bytes:
    """Wait for the next frame of ``track`` (a relay subscription) and encode it as JPEG."""
    try:
        frame = await asyncio.wait_for(track.recv(), timeout)
    except (TimeoutError, MediaStreamError) as exc:
        raise Conflict("未能从该参会者的视频中取得画面, 请确认其摄像头已开启") from exc
    finally:
        track.stop()
    return await asyncio.get_running_loop().run_in_executor(None, _to_jpeg, frame)


def _to_jpeg(frame: object) -> bytes:
    buf = io.BytesIO()
    frame.to_image().save(buf, format="JPEG", quality=JPEG_QUALITY)  # type: ignore[attr-defined]
    return buf.getvalue()
