"""Media paths behind the same room model: ``aiortc`` (embedded, video/hub.py) or ``janus``."""

from __future__ import annotations

from core.settings import get_settings

BACKENDS = ("aiortc", "janus")


def selected() -> str:
    name = get_settings().video_backend
    if name not in BACKENDS:
        raise ValueError(f"TONGBAN_VIDEO_BACKEND 须为 {' / '.join(BACKENDS)}, 不是 {name!r}")
    return name
