"""Data-parallel training with ``torch.distributed``, started by ``torchrun``.

``torchrun --nproc_per_node N run.py train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` for every process; :func:`init` reads
them and joins the process group (gloo on CPU, nccl on GPUs).  Without those variables
everything here is a no-op for a single process, so the same code runs both ways.

How the work is split (see ``trainer.fit``): every rank computes the same deterministic
epoch batches; each global batch of ``--batch-size`` texts is dealt out round-robin
(:func:`shard`), each rank computes its share, and DistributedDataParallel averages the
gradients.  So ``--batch-size`` is the global batch, the optimizer sees the same batches and
the same number of steps as a single process, and the result does not depend on N.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints reports."""
        return self.rank == 0


def env_info(environ: dict | None = None) -> DistInfo:
    """Read the torchrun variables; a plain ``python run.py`` gives rank 0 of 1."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", "0"))
        local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError as exc:
        raise UserError(f"bad torchrun environment variable ({exc})") from None
    if world < 1 or not 0 <= rank < world:
        raise UserError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world}")
    return DistInfo(rank, world, local_rank, local_world)


def _dist() -> Any:
    """``torch.distributed`` (imported here: a command that never joins a group never loads torch for it)."""
    import torch.distributed as dist

    return dist


def init(device: torch.device, info: DistInfo | None = None, timeout_s: int = 1800) -> DistInfo:
    """Join the process group when launched by torchrun (nccl for CUDA, else gloo)."""
    import torch

    dist = _dist()
    info = info or env_info()
    if not info.enabled or (dist.is_available() and dist.is_initialized()):
        return info
    if not dist.is_available():  # pragma: no cover - every official torch build has it
        raise UserError("this torch build has no torch.distributed; run without torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend=backend, rank=info.rank, world_size=info.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    log.info("rank %d of %d joined the %s process group", info.rank, info.world_size, backend)
    return info


def shutdown() -> None:
    """Leave the process group (if joined)."""
    if "torch" not in sys.modules:
        return
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """True inside an initialised multi-process group (never before torch is loaded: a group needs it)."""
    if "torch" not in sys.modules:
        return False
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(idx: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of one global batch: every ``world_size``-th index from ``rank``.

    The shares are disjoint and together are the whole batch; dealing round-robin keeps
    their lengths balanced when the batch is sorted by length.
    """
    return idx[rank::world_size]


def barrier() -> None:
    """Wait for every rank (no-op for one process)."""
    if active():
        _dist().barrier()


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64, on the CPU for gloo)."""
    if not active():
        return [float(v) for v in values]
    import torch

    dist = _dist()
    t = torch.tensor(list(values), dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def gather_rows(part: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Assemble an ``(n, ...)`` array from every rank's ``part`` (the rows at ``idx``)."""
    if not active():
        out = np.empty((n, *part.shape[1:]), dtype=part.dtype)
        out[idx] = part
        return out
    dist = _dist()
    pieces: list = [None] * dist.get_world_size()
    dist.all_gather_object(pieces, (idx, part))
    out = np.empty((n, *part.shape[1:]), dtype=part.dtype)
    for rows, values in pieces:
        if len(rows):
            out[rows] = values
    return out


def gather_to_main(obj: object) -> list | None:
    """Every rank's ``obj``, in rank order, on rank 0 (None on the others); ``[obj]`` for one process."""
    if not active():
        return [obj]
    dist = _dist()
    out: list | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the joined process group; ``(0, 1)`` for a single process."""
    if active():
        return _dist().get_rank(), _dist().get_world_size()
    return 0, 1


def predict_sharded(model: torch.nn.Module, seqs: Sequence[Sequence[int]], pad_id: int, batch_size: int,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """``inference.predict_logits`` with the texts dealt out over the ranks; every rank gets all logits."""
    from .engine import predict_logits

    rank, world = rank_world()
    if world == 1:
        return predict_logits(model, seqs, pad_id, batch_size, device=device)
    idx = np.arange(rank, len(seqs), world)
    part = predict_logits(model, [seqs[int(i)] for i in idx], pad_id, batch_size, device=device)
    return gather_rows(part, idx, len(seqs))
