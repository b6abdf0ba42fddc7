"""Dynamic micro-batching: concurrent requests share one forward pass.

Each request hands its texts to :meth:`MicroBatcher.submit` and awaits its rows. One
background task takes the first waiting request, then keeps collecting requests until the
batch holds ``max_batch`` texts or ``max_wait_ms`` have passed since that first request, and
runs the whole batch in a single worker thread (off the event loop, so the server keeps
accepting and answering while the model computes). While a batch runs, new requests queue up
and form the next batch, so under load batches fill without waiting at all.

A request is never split: one larger than ``max_batch`` runs alone. ``max_batch=1`` turns
batching off (every request runs on its own, in arrival order). ``executor`` runs the batches:
by default one thread of this process; the server passes a
:class:`~cls_app.service.model_process.ModelProcess` so the model has a core of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """What the batcher has done since start (``GET /info`` shows it)."""

    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch: int = 0
    busy_seconds: float = 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["busy_seconds"] = round(self.busy_seconds, 3)
        out["mean_requests_per_batch"] = round(self.requests / self.batches, 2) if self.batches else 0.0
        out["mean_texts_per_batch"] = round(self.texts / self.batches, 2) if self.batches else 0.0
        return out


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future


class BatcherClosed(RuntimeError):
    """The server is shutting down: no new work is taken."""


class MicroBatcher:
    """Group concurrent ``submit`` calls into batches for ``predict_proba`` (see the module doc): a function of
    texts returning an array of rows, or a NamedTuple of such arrays (a model's ``score``: probabilities and
    out-of-domain scores), each request getting its own rows."""

    def __init__(self, predict_proba: Callable[[Sequence[str]], Any], max_batch: int,
                 max_wait_ms: float, executor: Executor | None = None,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.predict_proba = predict_proba
        self.on_batch = on_batch  # (texts, seconds) of every batch run (the metrics)
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._carry: _Job | None = None
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="cls-model")
        self._busy = False
        self._closed = False

    async def start(self, warm_up: bool = True) -> None:
        """Start the batching task on the running event loop (after one warm-up prediction:
        the first call pays for lazy imports and allocations, not the first client)."""
        if warm_up:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.predict_proba, ["预热 warm-up"])
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run_forever(), name="micro-batcher")

    async def submit(self, texts: list[str]) -> Any:
        """The rows for ``texts`` (in order), computed in some batch."""
        if self._closed or self._queue is None:
            raise BatcherClosed("the server is shutting down")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(list(texts), future))
        return await future

    async def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking work, finish what is queued (up to ``timeout_s``), stop the worker thread."""
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._pending() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        leftovers = [self._carry] if self._carry else []
        while self._queue is not None and not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for job in leftovers:
            if not job.future.done():
                job.future.set_exception(BatcherClosed("the server is shutting down"))
        self._executor.shutdown(wait=True)

    def _pending(self) -> bool:
        return self._busy or self._carry is not None or (self._queue is not None and not self._queue.empty())

    async def _next_batch(self) -> list[_Job]:
        """The first waiting job, then more until ``max_batch`` texts or the wait is over."""
        assert self._queue is not None
        first = self._carry or await self._queue.get()
        self._carry = None
        jobs, size = [first], len(first.texts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while size < self.max_batch:
            left = deadline - loop.time()
            try:
                job = self._queue.get_nowait() if left <= 0 else await asyncio.wait_for(self._queue.get(), left)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if size + len(job.texts) > self.max_batch:
                self._carry = job  # starts the next batch; requests are never split
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch()
            self._busy = True
            try:
                await self._run_batch(loop, jobs)
            finally:
                self._busy = False

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]  # skip requests whose client went away
        if not jobs:
            return
        texts = [t for j in jobs for t in j.texts]
        start = loop.time()
        try:
            probs = await loop.run_in_executor(self._executor, self.predict_proba, texts)
        except Exception as exc:  # a model failure answers these requests with 500; the server stays up
            if isinstance(exc, BrokenProcessPool):
                log.error("the model process died during a batch of %d texts (killed, or out of memory?); "
                          "those requests get a 500, the next batch starts a new process", len(texts))
            else:
                log.exception("prediction failed for a batch of %d texts", len(texts))
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc)
            return
        self._record(jobs, len(texts), loop.time() - start)
        row = 0
        for j in jobs:
            end = row + len(j.texts)
            part = probs[row:end] if isinstance(probs, np.ndarray) else type(probs)(*(f[row:end] for f in probs))
            row += len(j.texts)
            if not j.future.done():
                j.future.set_result(part)

    def _record(self, jobs: list[_Job], texts: int, seconds: float) -> None:
        s = self.stats
        s.requests += len(jobs)
        s.texts += texts
        s.batches += 1
        s.largest_batch = max(s.largest_batch, texts)
        s.busy_seconds += seconds
        if self.on_batch is not None:
            self.on_batch(texts, seconds)
