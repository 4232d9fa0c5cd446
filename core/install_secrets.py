"""Secrets an installation makes for itself when none is configured.

A secret with a default in the source is no secret: anyone who read the code could sign. Each
one is a setting; left empty, a random one is made once and kept in the data directory (mode
0600), so it survives restarts and is the same for every process of the installation. They live
outside the database on purpose: whoever can write the database (a leaked backup, a stolen
database password) still cannot sign, unseal or forge with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
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
        # Written whole under a temporary name, then linked into place: a process starting at the
        # same moment reads either no file or the complete secret, never an empty one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} 为空: 删除它以重新生成, 或配置 TONGBAN_{name.upper().replace('-', '_')}")
    return value.encode()


def install_key(name: str, configured: str) -> bytes:
    """32 key bytes from the secret ``name`` (any configured text will do), separate per name."""
    return hashlib.sha256(name.encode() + b"\0" + install_secret(name, configured)).digest()
