"""Crash-safe file writing, and one clear error when a write fails.

Every file the project writes goes to a temporary name in the same folder and is renamed
into place only when complete, so a run killed at any moment never leaves a truncated file
that looks finished (``os.replace`` is atomic on POSIX within one file system). Files are
flushed to the disk (``fsync``) before they are renamed, so a power cut cannot leave an empty
file under the final name either.

A write that fails -- disk full (``ENOSPC``), I/O error (``EIO``), quota, read-only file
system, no permission -- removes the temporary file or folder, leaves the previous file or
folder as it was, and raises :class:`WriteError` (a :class:`~cls_app.errors.UserError`):
``cannot write PATH: No space left on device``, naming the final path.

Two internal functions are the only places data becomes durable and visible: :func:`_sync`
(fsync of a finished temporary file) and :func:`_publish` (the rename into place). Tests
patch them to inject faults at every write site (``tests/test_faults.py``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from .errors import UserError
from .interrupts import deferred

# errno values that mean "the data could not be written", reported as one line
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES,
                          errno.EPERM})
_LOW_SPACE_BYTES = 1 << 20  # a library's write error on a file system with less free space is a full disk
_OS_ERROR = re.compile(r"os error (\d+)")


class WriteError(UserError):
    """Writing ``path`` failed (disk full, I/O error, ...); nothing half-written is left behind."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def write_error(exc: BaseException, path: str | os.PathLike) -> WriteError | None:
    """The :class:`WriteError` ``exc`` stands for when writing ``path``, or None when it is no write failure.

    OSErrors are recognised by their errno; errors of libraries that write themselves
    (safetensors: ``... (os error 28)``; torch.save: a bare ``unexpected pos``) by the errno
    in their message, or, lacking one, by a file system with (almost) no free space left.
    """
    path = Path(path)
    if isinstance(exc, WriteError):
        return exc
    code = None
    if isinstance(exc, OSError):
        code = exc.errno
    elif isinstance(exc, Exception) and not isinstance(exc, UserError):
        match = _OS_ERROR.search(str(exc))
        if match:
            code = int(match.group(1))
        else:
            free = _free_bytes(path.parent)
            if free is not None and free < _LOW_SPACE_BYTES:
                code = errno.ENOSPC
    if code not in WRITE_ERRNOS:
        return None
    return WriteError(path, os.strerror(code))


def _translated(exc: BaseException, tmp: Path, path: Path) -> BaseException | None:
    """A WriteError naming the final path (not the temporary one) for a failed write, else None."""
    if isinstance(exc, WriteError):
        try:
            inner = exc.path.relative_to(tmp)
        except ValueError:
            return None
        return WriteError(path / inner if str(inner) != "." else path, exc.reason)
    return write_error(exc, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, is_dir: bool) -> None:
    """Give a temporary file/folder the mode a plainly created one would have (umask applied);
    ``mkstemp``/``mkdtemp`` make them private (0600/0700)."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


def _sync(path: Path) -> None:
    """Flush a finished temporary file (or every file of a folder) to the disk."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file or folder onto its final name."""
    os.replace(tmp, path)


def _naming(path: Path, action, *args: Path) -> None:
    """``action(*args)``, an OSError of a failed write turned into a :class:`WriteError` naming ``path``."""
    try:
        action(*args)
    except OSError as exc:
        err = write_error(exc, path)
        if err is None:
            raise
        raise err from None


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = write_error(exc, folder)
        if err is None:
            raise
        raise err from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was; a failed
    write raises :class:`WriteError`.
    """
    path = Path(path)
    _mkdir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise (write_error(exc, path) or exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        _usual_mode(tmp_path, is_dir=False)
        yield tmp_path
        _naming(path, _sync, tmp_path)
        with deferred():
            _naming(path, _publish, tmp_path, path)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        err = _translated(exc, tmp_path, path)
        if err is None:
            raise
        raise err from None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` on success."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as pretty UTF-8 JSON, atomically."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2)
        fh.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as UTF-8, atomically."""
    with atomic_open(path) as fh:
        fh.write(text)


def _temp_dir(path: Path, prefix: str) -> Path:
    _mkdir(path.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise (write_error(exc, path) or exc) from None
    _usual_mode(tmp, is_dir=True)
    return tmp


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name; swap it into place as a whole on success.

    An existing folder at ``path`` is replaced only after the new one is complete (and
    flushed to the disk); a failed write raises :class:`WriteError` and leaves it as it was.
    """
    path = Path(path)
    tmp = _temp_dir(path, f".{path.name}.")
    try:
        yield tmp
        _sync(tmp)
        with deferred():  # never leave the folder missing between the two renames
            old = None
            if path.exists():
                old = path.parent / f".{path.name}.old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
            try:
                _publish(tmp, path)
            except BaseException:
                if old is not None:
                    os.replace(old, path)
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        err = _translated(exc, tmp, path)
        if err is None:
            raise
        raise err from None


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike, names: Sequence[str], optional: Sequence[str] = ()) -> Iterator[Path]:
    """Write the files ``names`` into a temporary folder inside ``folder``; on success move each
    into ``folder`` in the order given (so the last one named marks a complete set). Names in
    ``optional`` are moved when they were written; when not, an earlier copy in ``folder`` is removed
    (it belongs to another set).

    Other files in ``folder`` are left alone. On an exception nothing is moved, the temporary
    folder is removed, and a failed write raises :class:`WriteError`.
    """
    folder = Path(folder)
    _mkdir(folder)
    tmp = _temp_dir(folder / "x", ".save.")
    try:
        yield tmp
        missing = {n for n in optional if not (tmp / n).exists()}
        for name in missing:
            (folder / name).unlink(missing_ok=True)
        names = [n for n in names if n not in missing]
        for name in names:
            _naming(folder / name, _sync, tmp / name)
        with deferred():
            for name in names:
                _naming(folder / name, _publish, tmp / name, folder / name)
    except BaseException as exc:
        err = _translated(exc, tmp, folder)
        if err is None:
            raise
        raise err from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
