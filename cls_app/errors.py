"""User-facing errors.

Anything a user can cause (a missing file, a bad row, a wrong column name) raises
:class:`UserError` with a one-line message that names the file, the row and what to do.
The CLI prints it as ``error: ...`` and exits with status 2, never with a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by user input, reported as one clear line without a traceback."""


def where(path: object, row: int | None = None) -> str:
    """Format a location as ``path`` or ``path, row N`` for error messages (rows are 1-based)."""
    return f"{path}" if row is None else f"{path}, row {row}"


class StepFailed(Exception):
    """An optional step of the main job failed under ``--strict`` (exit status 1, one line)."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"{step} failed ({type(cause).__name__}: {cause}); without --strict the job skips it and "
                         "goes on")
        self.step = step
