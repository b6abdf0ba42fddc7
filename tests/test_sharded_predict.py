"""``torchrun --nproc_per_node 2 run.py predict``: the processes share the input, rank 0 writes one output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, run_main, toy_texts, write_csv


@pytest.fixture(scope="module")
def tiny_model(toy_bert) -> Path:
    return toy_bert


def torchrun(*args: str, n: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
         str(ROOT / "run.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
def test_two_processes_write_the_one_process_output(tiny_model, tmp_path, capsys) -> None:
    texts, labels = toy_texts(103, seed=8)
    texts[5] = ""  # an empty text keeps its row
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts, "label": labels})
    frame.to_csv(tmp_path / "in.csv", index=False)
    # 103 rows in windows of 16: 7 windows, so the last round gives rank 1 nothing
    common = ["predict", "--model", str(tiny_model), "--input", str(tmp_path / "in.csv"), "--chunk-size", "16",
              "--top-k", "2", "--threads", "1"]
    rc, _, err = run_main(capsys, *common, "--output", str(tmp_path / "one.csv"))
    assert rc == 0, err
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


@pytest.mark.parametrize(("ext", "n"), [("csv", 3), ("jsonl", 9), ("tsv", 1)])
def test_shards_merge_into_the_one_process_output(tiny_model, tmp_path, capsys, ext, n) -> None:
    """--shard K/N writes whole windows K of N (some empty when N > windows); --merge joins them exactly."""
    texts, labels = toy_texts(103, seed=9)
    texts[40] = ""
    pd.DataFrame({"text": texts, "label": labels, "note": ["a,b\nc"] * 103}).to_csv(tmp_path / "in.csv", index=False)
    common = ["predict", "--model", str(tiny_model), "--input", str(tmp_path / "in.csv"), "--chunk-size", "16",
              "--threads", "1"]
    rc, _, err = run_main(capsys, *common, "--output", str(tmp_path / f"one.{ext}"))
    assert rc == 0, err
    parts = []
    for k in range(1, n + 1):
        parts.append(str(tmp_path / f"part{k}.{ext}"))
        rc, _, err = run_main(capsys, *common, "--shard", f"{k}/{n}", "--output", parts[-1])
        assert rc == 0, err
    rc, out, err = run_main(capsys, "predict", "--merge", *parts, "--output", str(tmp_path / f"merged.{ext}"))
    assert rc == 0 and f"merged {n} parts" in out, err
    assert (tmp_path / f"merged.{ext}").read_bytes() == (tmp_path / f"one.{ext}").read_bytes()


def test_shard_and_merge_errors(tiny_model, tmp_path, capsys) -> None:
    write_csv(tmp_path / "in.csv", *toy_texts(10, seed=1))
    base = ["predict", "--model", str(tiny_model), "--input", str(tmp_path / "in.csv"), "--output"]
    for bad in ("0/2", "3/2", "x", "1/0"):
        rc, _, err = run_main(capsys, *base, str(tmp_path / "o.csv"), "--shard", bad)
        assert rc == 2 and "give K/N with 1 <= K <= N" in err
    merged = ["--output", str(tmp_path / "m.csv")]
    rc, _, err = run_main(capsys, "predict", "--merge", str(tmp_path / "missing.csv"), *merged)
    assert rc == 2 and "part file not found" in err
    assert run_main(capsys, *base, str(tmp_path / "a.csv"), "--top-k", "2")[0] == 0
    assert run_main(capsys, *base, str(tmp_path / "b.csv"))[0] == 0
    rc, _, err = run_main(capsys, "predict", "--merge", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), *merged)
    assert rc == 2 and "columns differ" in err and not (tmp_path / "m.csv").exists()
