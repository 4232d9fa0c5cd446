"""A private network namespace that the test process enters for some tests and leaves again.

WebRTC peers (aioice, Chromium) gather host candidates from every non-loopback interface, so on
the machine itself media would flow over eth0's address; Chromium also looks up Google hosts
through the machine's resolver, whatever its flags. Tests marked ``netns`` therefore run — setup,
body and teardown — with the test thread inside a network namespace made here: ``lo`` up and a
veth pair (both ends inside; the kernel here has no ``dummy`` links) with the private address
``ADDRESS``, nothing routed out. Sockets made while inside, and the threads and processes
started from inside (uvicorn's thread, Playwright's driver and Chromium), stay in the namespace;
PostgreSQL on the machine's 127.0.0.1 is out of reach there, so such tests use SQLite.

Network namespaces are per thread in Linux: ``unshare(CLONE_NEWNET)`` in a helper thread makes
the namespace, ``setns`` moves the calling thread in and back out. Needs root (CAP_SYS_ADMIN) and
``ip`` (iproute2). A session-scoped fixture first made by a ``netns`` test lives in the
namespace, out of reach of the tests outside it.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading

CLONE_NEWNET = 0x40000000
ADDRESS = "10.77.0.1"
SETUP = [
    ["ip", "link", "set", "lo", "up"],
    ["ip", "link", "add", "tb0", "type", "veth", "peer", "name", "tb1"],
    ["ip", "addr", "add", f"{ADDRESS}/24", "dev", "tb0"],
    ["ip", "link", "set", "tb0", "up"],
    ["ip", "link", "set", "tb1", "up"],
]
_libc = ctypes.CDLL(None, use_errno=True)


class NetNSUnavailable(RuntimeError):
    pass


def _here() -> int:
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise NetNSUnavailable(f"setns(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())}")


def _create() -> int:
    """In a throw-away thread: a new namespace, set up; its fd keeps it alive."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                raise NetNSUnavailable(f"unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())} "
                                       "(needs root or CAP_SYS_ADMIN)")
            for cmd in SETUP:
                try:
                    done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
                except FileNotFoundError as exc:
                    raise NetNSUnavailable("`ip` not found: install iproute2") from exc
                if done.returncode:
                    raise NetNSUnavailable(f"{' '.join(cmd)}: {done.stderr.strip()}")
            box["fd"] = _here()
        except BaseException as exc:  # noqa: BLE001 — re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="netns-create", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["fd"]  # type: ignore[return-value]


class NetNS:
    """``enter()`` moves the calling thread into the namespace, ``leave()`` back where it was."""

    def __init__(self) -> None:
        self.fd = _create()
        self._back: int | None = None

    @property
    def inside(self) -> bool:
        return self._back is not None

    def enter(self) -> None:
        assert self._back is None, "already inside"
        back = _here()
        try:
            _setns(self.fd)
        except BaseException:
            os.close(back)
            raise
        self._back = back

    def leave(self) -> None:
        if self._back is None:
            return
        _setns(self._back)
        os.close(self._back)
        self._back = None

    def close(self) -> None:
        self.leave()
        os.close(self.fd)
