"""Ctrl-C (SIGINT) and SIGTERM: end a run cleanly within seconds.

The CLI installs :func:`handle_signals` for the duration of a command: either signal raises
:class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so every ``finally`` and
``with`` block runs on the way out: atomic writers remove their temporary files, locks are
released, and the training loop saves a resumable checkpoint. The CLI then prints one line and
exits with ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM), as a shell does.

Short critical sections -- swapping a finished folder into place, one training step and its
bookkeeping -- run under :func:`deferred`: a signal arriving inside is held until the section
ends, so it never leaves a half-swapped folder or a step that was taken but not counted.
A second signal inside a deferred section is raised at once (a stuck section can always be
broken with a second Ctrl-C).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)

_depth = 0
_pending: int | None = None


class Interrupted(KeyboardInterrupt):
    """Raised by the signal handler; ``hint`` is set by whoever knows what to do next."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.hint: str | None = None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        """The one line the CLI prints."""
        return f"interrupted by {self.signal_name}" + (f"; {self.hint}" if self.hint else "")


def _handler(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _depth > 0 and _pending is None:
        _pending = signum
        return
    _pending = None
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` inside the block (main thread only);
    the previous handlers are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then raise :class:`Interrupted` (see the module docstring).

    Signals reach the main thread only: in any other thread this does nothing.
    """
    global _depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)
