"""One run per output: a lock beside each output folder or file.

``train --out X``, ``pretrain --out X``, ``baseline --out X`` and ``predict --output X`` hold
:func:`run_lock` on ``X`` while they run. The lock is the file ``.X.lock`` in X's parent folder
(beside X, so that it survives X being swapped in as a whole), holding the holder's PID, host,
start time and command line as JSON, and an exclusive ``flock`` on it:

* a second process aiming at the same X is refused with one line naming the holder;
* the kernel drops the ``flock`` when the holder dies in any way (even SIGKILL or a power cut
  on a local disk), so a lock file left behind is recognised as stale, whatever PID it names
  (no PID-reuse confusion), and taken over with a warning;
* the holder removes the file when it ends (normally, on an error or on Ctrl-C/SIGTERM).

Paths are resolved first, so ``x``, ``./x`` and ``/abs/x`` (or a symlink to it) are one lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .fileio import WRITE_ERRNOS, write_error

try:  # POSIX only; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of ``target``: ``.NAME.lock`` beside it (after resolving the path)."""
    resolved = Path(target).resolve()
    return resolved.parent / f".{resolved.name}{LOCK_SUFFIX}"


@dataclass
class Holder:
    """Who holds (or held) a lock, as written in the lock file."""

    pid: int | None = None
    host: str = "?"
    started: str = "?"
    command: str = ""

    @classmethod
    def me(cls) -> Holder:
        return cls(pid=os.getpid(), host=socket.gethostname(),
                   started=time.strftime("%Y-%m-%d %H:%M:%S %Z"), command=" ".join(sys.argv)[:500])

    @classmethod
    def parse(cls, raw: bytes) -> Holder | None:
        try:
            data = json.loads(raw.decode("utf-8"))
            return cls(pid=int(data["pid"]), host=str(data.get("host", "?")), started=str(data.get("started", "?")),
                       command=str(data.get("command", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def describe(self) -> str:
        if self.pid is None:
            return "PID unknown"
        host = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"PID {self.pid}{host}, started {self.started}"

    def dumps(self) -> bytes:
        return json.dumps({"pid": self.pid, "host": self.host, "started": self.started,
                           "command": self.command}).encode("utf-8")


def _read_holder(fd: int) -> Holder | None:
    raw = os.pread(fd, 65536, 0)
    return Holder.parse(raw) if raw.strip() else None


class RunLock:
    """An exclusive lock on one output path; see the module docstring. Use :func:`run_lock`."""

    def __init__(self, target: str | os.PathLike, flag: str = "--out") -> None:
        self.target = Path(target)
        self.flag = flag
        self.path = lock_path(target)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if fcntl is None:  # pragma: no cover
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise (write_error(exc, self.path.parent) or exc) from None
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:  # a full disk with no inode left, a read-only folder, ...
                raise (write_error(exc, self.path) or exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder_of_held(fd)
                os.close(fd)
                raise UserError(
                    f"{self.target} is in use by another run ({holder.describe() if holder else 'PID unknown'}); "
                    f"wait for it or choose another {self.flag}"
                ) from None
            except OSError as exc:  # a file system without locks (some network mounts)
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    log.warning("%s: this file system cannot lock files (%s); two runs on it are not prevented",
                                self.path, exc.strerror)
                    return self
                raise
            if self._still_linked(fd):
                break
            os.close(fd)  # the holder removed the file between our open and flock: try the new one
        else:  # pragma: no cover - only under a storm of lock churn
            raise UserError(f"{self.path}: cannot take the lock (it keeps changing); try again")
        self._fd = fd
        try:
            self._write_holder(fd)
        except BaseException:
            self.release()
            raise
        return self

    def _write_holder(self, fd: int) -> None:
        stale = _read_holder(fd)
        if stale is not None:
            log.warning("%s: taking over the lock of an earlier run that ended without releasing it (%s)",
                        self.target, stale.describe())
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, Holder.me().dumps(), 0)
        except OSError as exc:  # a full disk: the lock holds all the same, others just see "PID unknown"
            if exc.errno not in WRITE_ERRNOS:
                raise
            log.debug("%s: cannot write the holder's details (%s)", self.path, exc.strerror)

    def _still_linked(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _holder_of_held(fd: int) -> Holder | None:
        """The holder's details; a holder that has just taken the lock writes them a moment later."""
        for _ in range(20):
            holder = _read_holder(fd)
            if holder is not None:
                return holder
            time.sleep(0.01)
        return None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._still_linked(fd):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def run_lock(target: str | os.PathLike | None, flag: str = "--out") -> Iterator[RunLock | None]:
    """Hold the lock of ``target`` for the block (nothing when ``target`` is None).

    Raises :class:`UserError` naming the holder when another live process holds it.
    """
    if target is None:
        yield None
        return
    with RunLock(target, flag) as lock:
        yield lock
