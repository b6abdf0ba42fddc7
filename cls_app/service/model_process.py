"""The model in its own process, so the server's event loop and the model never share one GIL.

In one process, the event loop (HTTP parsing, validation, JSON) and the model thread (tokenizing,
and the many small calls of a small model) take turns on Python's global interpreter lock, so
together they use about one core however many the machine has. :class:`ModelProcess` is a
one-worker executor whose worker is a separate (spawned) process that loads the model folder
once; the micro-batcher hands it whole batches of texts and gets the probabilities back (texts
and arrays cross the process boundary, never a user's file).

If the model process dies (killed, out of memory), the batch it was running fails with a 500,
and the next batch starts a fresh process: the server stays up.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)

_predictor: Any = None
"""The model loaded in the model process (set by :func:`load_in_worker`)."""


def load_in_worker(loader: Callable[..., Any], args: tuple) -> None:
    """Process initializer: ignore Ctrl-C (the server stops this process) and load the model."""
    global _predictor
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _predictor = loader(*args)


def predict_in_worker(texts: list[str]) -> Any:
    """``score`` (probabilities and ood scores) of the model loaded in this process."""
    return _predictor.score(texts)


class ModelProcess(Executor):
    """A one-process executor for :func:`predict_in_worker`; a process that died is replaced.

    ``loader(*args)``, called once in the new process, must be a picklable module-level function
    returning a predictor.
    """

    def __init__(self, loader: Callable[..., Any], args: tuple) -> None:
        self._init = (loader, args)
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=load_in_worker, initargs=self._init)

    def start(self) -> Future:
        """Start the process now (it loads the model), rather than at the first batch."""
        return self.submit(int)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            try:
                return self._pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                log.warning("the model process died; starting a new one")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
