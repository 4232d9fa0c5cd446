"""Heavy work in worker processes: a few at once, each task with a deadline and a memory ceiling.

Decoding scans, parsing item definitions, evaluating 网络自动审批 rules and drawing PDFs are
pure CPU on input that others chose. Run in the server process they hold the GIL (pure Python:
PyYAML, pypdf, reportlab), so the event loop and every other request wait; and a thread cannot be
stopped. Here each task goes to a worker process of a small pool:

- at most ``workers`` tasks of a pool run at once (the others wait for a slot, up to ``wait``);
- a task that passes its deadline has its process killed (``Overrun``) and a new one takes its
  place; nothing it did is kept;
- each worker runs ``nice``: the server's own threads get the CPU first;
- a worker's address space is capped (``RLIMIT_AS``) at what it used after loading its modules
  plus the pool's memory allowance, so a decoder that allocates beyond any estimate fails with
  ``MemoryError`` instead of taking the machine.

Tasks are module-level functions called by reference; their arguments and results are pickled.
A file or bytes passed as ``data`` is streamed to the worker in chunks and handed to the
function as its first argument, a seekable binary stream (spooled to disk beyond 8 MB).

    value = DECODES.run(inspect, media_type, data=stream, timeout=20)
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, BinaryIO, TypeVar

from core.settings import ROOT, get_settings

T = TypeVar("T")
CHUNK = 1 << 20
START_SECONDS = 60.0  # a cold interpreter importing Pillow, pydantic, reportlab on a busy machine
NICE = 10


class OffloadError(Exception):
    """The task did not run to an answer; ``reason`` says why in zh-CN."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Overrun(OffloadError):
    """The task passed its deadline; its process was killed."""


class Busy(OffloadError):
    """Every worker of the pool stayed busy for the whole wait."""


class WorkerLost(OffloadError):
    """The worker died under the task (killed, crashed) or could not be started."""


class _Worker:
    def __init__(self, name: str, preload: tuple[str, ...], memory: int | None) -> None:
        down_r, down_w = os.pipe()  # parent → worker
        up_r, up_w = os.pipe()  # worker → parent
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # one address-space ceiling, few arenas in it
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.offload", str(down_r), str(up_w), name, str(memory or 0),
                 *preload],
                pass_fds=(down_r, up_w), stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
        except OSError as exc:
            for fd in (down_r, down_w, up_r, up_w):
                os.close(fd)
            raise WorkerLost(f"无法启动工作进程: {exc}") from exc
        os.close(down_r)
        os.close(up_w)
        self.tx = Connection(down_w, readable=False)
        self.rx = Connection(up_r, writable=False)
        try:
            if not self.rx.poll(START_SECONDS):
                raise WorkerLost(f"工作进程 {START_SECONDS:.0f} 秒内未就绪")
            self.rx.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise WorkerLost(f"工作进程启动失败: {exc}") from exc
        except WorkerLost:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for conn in (self.tx, self.rx):
            conn.close()


class Pool:
    """A fixed number of worker processes, started on first use."""

    def __init__(self, name: str, workers: Callable[[], int], *, preload: tuple[str, ...] = (),
                 memory: Callable[[], int | None] = lambda: None) -> None:
        self.name, self._workers, self.preload, self._memory = name, workers, preload, memory
        self._lock = threading.Lock()
        self._slots: threading.BoundedSemaphore | None = None
        self._idle: list[_Worker] = []
        self._limit: int | None = None
        self.started = 0  # workers started so far (the tests count restarts after a kill)

    def _semaphore(self) -> threading.BoundedSemaphore:
        with self._lock:
            if self._slots is None:
                self._slots = threading.BoundedSemaphore(max(1, self._workers()))
                self._limit = self._memory()
            return self._slots

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                w = self._idle.pop()
                if w.proc.poll() is None:
                    return w
                w.kill()
            self.started += 1
        return _Worker(self.name, self.preload, self._limit)

    def run(self, fn: Callable[..., T], /, *args: Any, timeout: float, wait: float | None = None,
            data: bytes | BinaryIO | None = None, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` (``fn(stream, *args, **kwargs)`` with ``data``) in a worker.

        Raises what ``fn`` raised, ``Overrun`` past ``timeout`` seconds, ``Busy`` when no worker
        was free within ``wait`` seconds (default: ``timeout`` twice), ``WorkerLost``."""
        slots = self._semaphore()
        if not slots.acquire(timeout=2 * timeout if wait is None else wait):
            raise Busy(f"处理繁忙: {self.name} 的 {self._workers()} 个工作进程均在使用中, 请稍后重试")
        worker: _Worker | None = None
        try:
            worker = self._take()
            deadline = time.monotonic() + timeout
            try:
                worker.tx.send((fn, args, kwargs, data is not None))
                if data is not None:
                    _send_data(worker.tx, data)
                if not worker.rx.poll(max(0.0, deadline - time.monotonic())):
                    raise Overrun(f"处理超过时限 {timeout:g} 秒, 已中止")
                tag, value = worker.rx.recv()
            except (EOFError, OSError) as exc:
                raise WorkerLost(f"工作进程意外退出 (可能超出内存上限): {exc}") from exc
            self._give(worker)
            worker = None
            if tag == "err":
                raise value
            return value  # type: ignore[no-any-return]
        finally:
            if worker is not None:  # overrun, lost or interrupted: its state is unknown
                worker.kill()
            slots.release()

    def _give(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for w in idle:
            w.kill()


def _send_data(tx: Connection, data: bytes | BinaryIO) -> None:
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for i in range(0, len(view), CHUNK):
            tx.send_bytes(view[i:i + CHUNK])
    else:
        start = data.tell()
        try:
            while chunk := data.read(CHUNK):
                tx.send_bytes(chunk)
        finally:
            data.seek(start)
    tx.send_bytes(b"")


def _receive_data(rx: Connection) -> BinaryIO:
    spool: BinaryIO = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # type: ignore[assignment]  # noqa: SIM115 (the task's)
    while chunk := rx.recv_bytes():
        spool.write(chunk)
    spool.seek(0)
    return spool


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _orphaned(parent: int) -> None:
    """Exit when the server is gone (SIGKILLed, crashed): nobody is left to wait for the answer."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _serve(argv: list[str]) -> None:
    down, up, _name, memory = int(argv[0]), int(argv[1]), argv[2], int(argv[3])
    os.nice(NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server decides
    for module in argv[4:]:
        importlib.import_module(module)
    threading.Thread(target=_orphaned, args=(os.getppid(),), daemon=True).start()
    if memory:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = _vm_size() + memory
        resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    rx, tx = Connection(down, writable=False), Connection(up, readable=False)
    tx.send(("ready", os.getpid()))
    while True:
        try:
            fn, args, kwargs, streamed = rx.recv()
        except EOFError:
            return
        stream: BinaryIO | None = None
        try:
            if streamed:
                stream = _receive_data(rx)
                args = (stream, *args)
            out: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # everything goes back to the caller, even MemoryError
            out = ("err", _portable(exc))
        finally:
            if stream is not None:
                stream.close()
        try:
            tx.send(out)
        except Exception as exc:  # an answer that does not pickle
            tx.send(("err", _portable(exc)))


# -- the pools -----------------------------------------------------------------------------------

def _decode_memory() -> int:
    # The pixels' budget plus room for the decoder's own tables and the spooled input.
    return get_settings().decode_memory_bytes + 128 * 1024 * 1024


# Scans (images, PDFs) and thumbnails: checked with at most ``decode_workers`` decodes at once.
DECODES = Pool("decode", lambda: get_settings().decode_workers,
               preload=("engine.scan_validation",), memory=_decode_memory)
# Item definitions (YAML), 网络自动审批 rules and PDF rendering.
COMPUTE = Pool("compute", lambda: get_settings().compute_workers,
               preload=("states.loader", "states.patterns"), memory=lambda: 1024 * 1024 * 1024)


@atexit.register
def _close_all() -> None:
    for pool in (DECODES, COMPUTE):
        pool.close()


if __name__ == "__main__":
    _serve(sys.argv[1:])
