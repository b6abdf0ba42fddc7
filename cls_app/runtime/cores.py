"""How many CPU threads a process gets by default (a light module: no torch).

The one thread policy (:func:`cls_app.runtime.device.configure_threads`) starts here: the usable
cores split evenly among the local processes (torchrun's, or ``serve --workers``).
"""

from __future__ import annotations

import os

__all__ = ["default_threads"]


def default_threads(local_world_size: int = 1) -> int:
    """CPU threads per process: the usable cores split evenly among the local processes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_world_size))
