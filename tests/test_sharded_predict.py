"""``torchrun --nproc_per_node 2 run.py predict``: the processes share the input, rank 0 writes one output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, run_cli, run_main, toy_texts, write_csv


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from cls_app.io.records import DataOptions
    from cls_app.training.pipeline import run_training
    from cls_app.training.settings import ModelOptions, TrainJob, TrainSettings

    folder = tmp_path_factory.mktemp("sharded")
    job = TrainJob(
        data=DataOptions(train=str(write_csv(folder / "train.csv", *toy_texts(160, 1))),
                         dev=str(write_csv(folder / "dev.csv", *toy_texts(40, 2)))),
        model=ModelOptions(layers=1, hidden=32, heads=2, min_freq=1, max_len=32),
        train=TrainSettings(epochs=2, batch_size=16, lr=2e-3, seed=0),
        out=str(folder / "model"),
    )
    run_training(job)
    return folder / "model"


def torchrun(*args: str, n: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
         str(ROOT / "run.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def test_two_processes_write_the_one_process_output(tiny_model, tmp_path) -> None:
    texts, labels = toy_texts(103, seed=8)
    texts[5] = ""  # an empty text keeps its row
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts, "label": labels})
    frame.to_csv(tmp_path / "in.csv", index=False)
    # 103 rows in windows of 16: 7 windows, so the last round gives rank 1 nothing
    common = ["predict", "--model", str(tiny_model), "--input", str(tmp_path / "in.csv"), "--chunk-size", "16",
              "--top-k", "2", "--threads", "1"]
    one = run_cli(*common, "--output", str(tmp_path / "one.csv"))
    assert one.returncode == 0, one.stderr
    two = torchrun(*common, "--output", str(tmp_path / "two.csv"))
    assert two.returncode == 0, two.stderr[-3000:]

    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    out = pd.read_csv(tmp_path / "two.csv", keep_default_na=False)
    assert out["id"].tolist() == list(range(103))
    assert two.stdout.count("wrote 103 rows") == 1 and "with 2 processes" in two.stdout  # rank 0 alone reports
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "one.csv", "two.csv"]  # no part files left


def test_torchrun_needs_an_input_file(tiny_model, monkeypatch, capsys) -> None:
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)  # what torchrun sets; the check comes before joining a group
    rc, _, err = run_main(capsys, "predict", "--model", str(tiny_model), "--text", "好")
    assert rc == 2 and "give --input and --output" in err
