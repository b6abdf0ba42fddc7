"""Where and in which precision the model runs: device choice, autocast, CPU threads.

* ``--device auto`` (default) takes CUDA when a GPU is present, else the CPU; ``--device cuda``
  without a GPU is a user error, not a silent fall-back.
* ``--precision auto`` when training is bf16 autocast on a GPU that supports it (fp16 with a
  gradient scaler on older GPUs) and fp32 on the CPU; ``--precision bf16`` also works on CPUs
  with AVX512-BF16 / AMX (measure it: ``bench/train_speed.py``). A loaded model predicts in fp32
  unless asked for bf16 (``InferenceOptions.precision``; measured in ``bench/precision.py``).
* ``--threads`` sets torch's intra-op threads; under ``torchrun`` the default is the cores
  divided among the local processes, so they do not fight over the same cores.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable, Iterator

import torch

from ..errors import UserError
from .cores import default_threads
from .precisions import PRECISIONS

log = logging.getLogger(__name__)

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | None = "auto", local_rank: int | None = None) -> torch.device:
    """``auto``/None: CUDA when available (the ``local_rank``-th GPU under torchrun), else CPU.

    Raises:
        UserError: for a device this machine does not have or a name torch does not know.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device name (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is visible here (use --device cpu or auto)")
        if device.index is None:
            device = torch.device("cuda", local_rank or 0)
        if device.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UserError("--device mps: Apple MPS is not available here")
    elif device.type != "cpu":
        raise UserError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


@functools.cache
def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 instructions (AVX512-BF16 or AMX)."""
    check = getattr(torch.backends.mkldnn, "is_available", lambda: False)
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check() and ((probe and probe()) or (amx and amx())))


def resolve_precision(precision: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32.

    Raises:
        UserError: for fp16 on a CPU, or bf16 where neither GPU nor CPU supports it.
    """
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    dtype = _DTYPES[precision]
    if dtype is torch.float16 and device.type == "cpu":
        raise UserError("--precision fp16 needs a GPU; on the CPU use bf16 (if supported) or fp32")
    if dtype is torch.bfloat16:
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("--precision bf16: this GPU has no bf16 support (use fp16)")
        if device.type == "cpu" and not cpu_supports_bf16():
            warn_slow_bf16()
    return dtype


@functools.cache
def warn_slow_bf16() -> None:
    """Once per process (a model predicting file windows asks on every window)."""
    log.warning("this CPU has no native bf16 instructions: bf16 autocast will be slow")


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Mixed-precision autocast for the forward pass; a no-op for fp32."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 (bf16 and fp32 need none)."""
    enabled = dtype is torch.float16 and device.type == "cuda"
    return torch.amp.GradScaler("cuda" if enabled else "cpu", enabled=enabled)


def adamw(params: list[dict], lr: float, device: torch.device) -> RowSparseAdamW:
    """AdamW, with its fused kernel on CPU and CUDA: one pass over each parameter instead of the
    for-each implementation's temporaries (a 2-layer BERT with 18M bigram parameters: 140 instead
    of 207 ms per step on a 2-core AMD EPYC, bench/optimizer_step.py; the same update up to float rounding).
    Row-sparse gradients (embedding tables with ``sparse=True``) are taken too: :class:`RowSparseAdamW`."""
    return RowSparseAdamW(params, lr=lr, fused=device.type in ("cpu", "cuda"))


class RowSparseAdamW(torch.optim.AdamW):
    """AdamW (the same update) for models whose embedding tables give row-sparse gradients (``sparse=True``).

    With a dense gradient, every backward pass of a table of 100,000 bigram vectors allocates a
    zeroed gradient of the whole table, adds the batch's few hundred rows into it, and the norm
    clipping reads all of it. Here the sparse gradient is written into a dense buffer kept across
    steps, AdamW's own (fused) step runs on it exactly as on a dense gradient (so every row's
    moments decay every step, as in AdamW), and afterwards only the rows the batch touched are
    cleared. The state and ``state_dict`` are AdamW's. Measured in ``bench/train_flops.py``; a
    "lazy" Adam that updates only the touched rows would be cheaper still, but it moves rare rows
    far less than AdamW does and lost 0.9 macro-F1 points on THUCNews (docs/speed.md).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dense_grads: dict[torch.Tensor, torch.Tensor] = {}  # parameter -> its gradient buffer

    @torch.no_grad()
    def step(self, closure=None):
        held = []  # (parameter, its sparse gradient, the rows it touched)
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None or not grad.is_sparse:
                    continue
                grad = grad.coalesce()
                rows = grad.indices()[0]
                buffer = self.dense_grads.get(p)
                if buffer is None:
                    buffer = self.dense_grads[p] = torch.zeros_like(p)
                buffer.index_copy_(0, rows, grad.values().to(buffer.dtype))
                held.append((p, grad, rows))
                p.grad = buffer
        try:
            return super().step(closure)
        finally:
            for p, grad, rows in held:
                self.dense_grads[p].index_fill_(0, rows, 0.0)
                p.grad = grad


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` (L2) that also takes row-sparse gradients; returns the total norm."""
    params = [p for p in params if p.grad is not None]
    if not any(p.grad.is_sparse for p in params):  # type: ignore[union-attr]
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    grads = []
    for p in params:
        if p.grad.is_sparse:  # type: ignore[union-attr]
            p.grad = p.grad.coalesce()  # type: ignore[union-attr]
            grads.append(p.grad.values())  # a view: scaling it scales the gradient
        else:
            grads.append(p.grad)
    total = torch.nn.utils.get_total_norm(grads)
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef)
    return total


def configure_threads(threads: int | None, local_world_size: int = 1) -> int:
    """Set torch's intra-op threads, for training and prediction alike; return the number.

    The one thread policy: ``threads`` when given, else the usable cores split evenly among the
    local processes (:func:`default_threads`; torchrun sets how many). Idle OpenMP threads sleep
    rather than spin (``OMP_WAIT_POLICY=PASSIVE``, set by ``run.py``), which is what made extra
    threads costly on a busy machine. The load average is not consulted: it trails by a minute
    and once made prediction take 1 thread on an idle 2-core machine.
    """
    n = default_threads(local_world_size) if threads is None else threads
    if n < 1:
        raise UserError(f"--threads must be at least 1, got {n}")
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    log.info("torch uses %d CPU thread(s)", n)
    return n
