"""One SQLite writer at a time, handed over the moment the previous one commits.

SQLite lets one transaction write at a time. A writer that finds the lock taken sleeps in
SQLite's busy handler — 1, 2, 5, 10 … 100 ms between tries — while a transition holds the
lock for a fraction of a millisecond; with two API worker processes most of the lock's time
went to sleeping waiters. Writers queue here instead, before ``BEGIN IMMEDIATE``: a thread lock
within the process, then an advisory ``flock`` on a file beside the database across processes.
Both wake the next waiter as soon as the holder commits or rolls back; a process that dies
releases its ``flock`` with it. WAL checkpoints move off the commit path too (``Checkpointer``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading

log = logging.getLogger("tongban.storage")


class WriterQueue:
    """The queue for one database file, shared by every connection of a process."""

    _by_path: dict[str, WriterQueue] = {}
    _registry = threading.Lock()

    @classmethod
    def for_file(cls, db_path: str, timeout: float) -> WriterQueue:
        """One queue per file and process, however many engines open it: two engines' queues
        would meet only at the ``flock``, which cannot time out on a writer nested in a writer."""
        key = os.path.realpath(db_path)
        with cls._registry:
            queue = cls._by_path.get(key)
            if queue is None:
                queue = cls._by_path[key] = cls(key, timeout)
            return queue

    def __init__(self, db_path: str, timeout: float) -> None:
        self.lock_path = db_path + ".writer"
        self.timeout = timeout
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        # flock belongs to an open file description: a forked child must open its own (and
        # must not inherit a thread lock some other thread held at the fork).
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._fd, self._thread_lock = None, threading.Lock()

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def acquire(self) -> None:
        # Timing out like SQLite's busy_timeout also turns a writer nested in a writer on one
        # thread (which would wait for itself) into the usual "database is locked" error.
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked (waited for the writer queue)")
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class Checkpointer:
    """Copies the WAL back into the database file on a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT of whichever transaction crosses its
    threshold: that caller waits for a thousand page writes and an fsync (the 3–4 ms p99 of
    transitions that otherwise take 0.2 ms), and here it would hold the writer queue meanwhile.
    Connections turn it off (``wal_autocheckpoint=0``); every ``every`` commits wake this thread.
    It copies pages PASSIVE-ly, beside the writers. A WAL is only rewound when a checkpoint has
    caught up at the moment a writer begins, which a lagging thread never has under steady
    writes; so once the WAL passes ``restart_frames`` (8,000 pages, about 32 MB: each RESTART
    stalls writers for an fsync, so not too often), the thread takes the writer queue and
    finishes with RESTART — by then only the last few frames are left to copy.
    """

    def __init__(self, db_path: str, queue: WriterQueue, every: int = 100, restart_frames: int = 8000,
                 idle_s: float = 5.0) -> None:
        self.db_path, self.queue = db_path, queue
        self.every, self.restart_frames, self.idle_s = every, restart_frames, idle_s
        self.checkpoints = self.restarts = 0
        self._commits = 0
        self._wake = threading.Event()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        self._commits += 1  # approximate under threads, which is all a threshold needs
        if self._commits < self.every:
            return
        self._commits = 0
        self._wake.set()
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=100")  # RESTART waits this long for readers, then retries later
        try:
            while self._wake.wait(timeout=self.idle_s):
                self._wake.clear()
                try:
                    self._checkpoint(conn)
                except sqlite3.Error as exc:  # the next wake-up tries again; the WAL just grows meanwhile
                    log.warning("WAL checkpoint of %s failed: %s", self.db_path, exc)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        if frames < self.restart_frames:
            return
        self.queue.acquire()
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)")
            self.restarts += 1
        finally:
            self.queue.release()


class QueuedConnection(sqlite3.Connection):
    """A connection that gives the writer queue back when its transaction ends, however it ends."""

    writer_queue: WriterQueue | None = None
    checkpointer: Checkpointer | None = None
    holds_writer: bool = False

    def begin(self, readonly: bool) -> None:
        """A read-only unit takes a WAL snapshot (waits for nobody); a writer queues first."""
        if readonly:
            self.execute("BEGIN")
        else:
            self.begin_write()

    def begin_write(self) -> None:
        if self.writer_queue is not None and not self.holds_writer:
            self.writer_queue.acquire()
            self.holds_writer = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._give_back()
            raise

    def _give_back(self) -> None:
        if self.holds_writer and self.writer_queue is not None:
            self.holds_writer = False
            self.writer_queue.release()

    def commit(self) -> None:
        wrote = self.holds_writer
        try:
            super().commit()
        finally:
            if not self.in_transaction:  # a failed COMMIT leaves the transaction open: keep the lock
                self._give_back()
        if wrote and self.checkpointer is not None:
            self.checkpointer.committed()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()

