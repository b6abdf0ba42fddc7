"""Progress bars: one line each, only where someone watches.

:func:`progress_bar` is ``tqdm`` with one rule for every bar of the app: shown when the caller wants
it, stderr is a terminal and ``TQDM_DISABLE`` is not set (tqdm's own reading of its environment
variables gives way to an explicit ``disable``, so the rule is applied here); ``leave=False`` by
default, so a finished bar leaves its line to the next.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["bars_wanted", "progress_bar"]


def bars_wanted() -> bool:
    """Progress bars are shown: stderr is a terminal and ``TQDM_DISABLE`` is not set (to 1 or true)."""
    if os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes"):
        return False
    return sys.stderr.isatty()


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm`` bar over ``iterable`` (or ``total=``), disabled unless ``enabled`` and :func:`bars_wanted`."""
    from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=not (enabled and bars_wanted()), **kwargs)
