"""Data-parallel training: ``torchrun --nproc_per_node 2 run.py train`` on the CPU (gloo)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import ROOT, TINY_MODEL_ARGS, run_main, toy_texts, write_csv

MODEL_FILES = {"config.json", "vocab.txt", "model.safetensors", "training_args.json", "metrics.json",
               "train_log.csv", "test_eval", "ood.safetensors", "ood.json", "reference.json"}


@pytest.mark.slow
def test_two_process_run_matches_single_process(tmp_path, capsys) -> None:
    # 241 training texts, batch 16: the last batch of each epoch holds one text, so one rank
    # has nothing of it (it takes part with zero weight); dropout 0 makes runs comparable
    # step by step, since --batch-size is the global batch in both.
    files = {}
    for split, n, seed in (("train", 241, 1), ("dev", 60, 2), ("test", 60, 3)):
        files[split] = write_csv(tmp_path / f"{split}.csv", *toy_texts(n, seed))
    common = ["train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"]),
              "--epochs", "4", "--batch-size", "16", "--lr", "2e-3", "--dropout", "0", "--patience", "0",
              "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), *TINY_MODEL_ARGS]

    rc, _, err = run_main(capsys, *common, "--out", str(tmp_path / "single"))
    assert rc == 0, err
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "run.py"), *common, "--out", str(tmp_path / "ddp")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    # on failure: each rank's last lines (a rank that aborts is otherwise hidden behind its peer's connection error)
    assert ddp.returncode == 0, "\n".join(
        "\n".join([line for line in ddp.stderr.splitlines() if f"[rank{r}]" in line][-15:]) for r in (0, 1)
    ) + "\n" + ddp.stderr[-1500:]

    # one model folder, complete, nothing else written by either rank
    assert {p.name for p in (tmp_path / "ddp").iterdir()} == MODEL_FILES
    assert {p.name for p in tmp_path.iterdir()} == {"train.csv", "dev.csv", "test.csv", "cache", "single", "ddp"}
    assert ddp.stdout.count("model saved to") == 1  # only rank 0 reports

    m1 = json.loads((tmp_path / "single" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert (m1["processes"], m2["processes"]) == (1, 2)
    assert m1["steps"] == m2["steps"] == 4 * 16
    assert m1["test"]["accuracy"] >= 0.9 and m2["test"]["accuracy"] >= 0.9
    assert abs(m1["test"]["accuracy"] - m2["test"]["accuracy"]) <= 0.05
    log1 = pd.read_csv(tmp_path / "single" / "train_log.csv")
    log2 = pd.read_csv(tmp_path / "ddp" / "train_log.csv")
    assert len(log1) == len(log2) == 4
    # same batches, same global loss: the losses agree up to float summation order
    assert (log1["train_loss"] - log2["train_loss"]).abs().max() < 1e-4, (log1, log2)
