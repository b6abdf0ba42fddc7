"""Device, precision and thread choice; the distributed helpers that need no process group."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cls_app.errors import UserError
from cls_app.runtime import device as dev
from cls_app.runtime.distributed import DistInfo, env_info, shard
from cls_app.training.trainer import epoch_batches


def test_auto_picks_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert dev.resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert dev.resolve_device(None) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert dev.resolve_precision("auto", torch.device("cuda", 0)) is torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert dev.resolve_precision("auto", torch.device("cuda", 0)) is torch.bfloat16


def test_auto_falls_back_to_cpu_and_cuda_without_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="no CUDA GPU"):
        dev.resolve_device("cuda")
    with pytest.raises(UserError, match="not a device name|use auto"):
        dev.resolve_device("toaster")


def test_precision_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert dev.resolve_precision("auto", cpu) is None
    assert dev.resolve_precision("fp32", cpu) is None
    assert dev.resolve_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(UserError, match="fp16 needs a GPU"):
        dev.resolve_precision("fp16", cpu)
    with pytest.raises(UserError, match="--precision"):
        dev.resolve_precision("fp8", cpu)


def test_autocast_and_scaler() -> None:
    cpu = torch.device("cpu")
    a = torch.randn(4, 4)
    with dev.autocast(cpu, torch.bfloat16):
        assert (a @ a).dtype is torch.bfloat16
    with dev.autocast(cpu, None):
        assert (a @ a).dtype is torch.float32
    assert not dev.grad_scaler(cpu, torch.bfloat16).is_enabled()


def test_threads_split_among_local_processes() -> None:
    cores = dev.default_threads(1)
    assert dev.default_threads(2) == max(1, cores // 2)
    before = torch.get_num_threads()
    try:
        assert dev.configure_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_env_info_reads_torchrun_variables() -> None:
    assert env_info({}) == DistInfo(0, 1, 0, 1)
    info = env_info({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (info.rank, info.world_size, info.local_rank, info.local_world_size) == (3, 4, 1, 2)
    assert info.enabled and not info.is_main
    with pytest.raises(UserError):
        env_info({"RANK": "4", "WORLD_SIZE": "4"})


@given(st.lists(st.integers(0, 10_000), unique=True, max_size=70), st.integers(1, 8))
def test_shards_partition_the_batch(batch: list[int], world: int) -> None:
    idx = np.asarray(batch, dtype=np.int64)
    parts = [shard(idx, r, world) for r in range(world)]
    assert sorted(np.concatenate(parts).tolist()) == sorted(batch)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


@given(st.lists(st.integers(1, 60), min_size=1, max_size=150), st.integers(1, 9), st.integers(1, 4),
       st.integers(0, 3))
def test_epoch_batches_dealt_to_ranks_cover_each_sample_once(lengths: list[int], batch_size: int, world: int,
                                                             epoch: int) -> None:
    batches = epoch_batches(lengths, batch_size, 7, epoch, True)
    # every rank computes the same batches, so the shares fit together
    assert all(np.array_equal(a, b) for a, b in zip(batches, epoch_batches(lengths, batch_size, 7, epoch, True),
                                                     strict=True))
    seen = np.concatenate([shard(idx, r, world) for idx in batches for r in range(world)])
    assert sorted(seen.tolist()) == list(range(len(lengths)))
