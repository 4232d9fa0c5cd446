"""Secrets an installation makes for itself when none is configured.

A secret with a default in the source is no secret: anyone who read the code could sign. Each
one is a setting; left empty, a random one is made once and kept in the data directory (mode
0600), so it survives restarts and is the same for every process of the installation.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache

from core.settings import get_settings


@lru_cache
def install_secret(name: str, configured: str) -> bytes:
    """``configured`` when set, else the installation's own ``<data_dir>/<name>``."""
    if configured:
        return configured.encode()
    path = get_settings().data_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()
