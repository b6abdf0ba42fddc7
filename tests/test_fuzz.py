"""Fuzzing every reader, the model-folder loaders and each command's file argument.

Generated hostile inputs (tests/fuzzing.py); the property: success with every row accounted for,
or a UserError / exit status 2 with one ``error:`` line -- never another exception, a traceback, a
hang or a half-written output. This is the short, fixed-seed CI profile; ``bench/fuzz_long.py``
runs the same tests with many more cases (``FUZZ_PROFILE=fuzz-long FUZZ_SCALE=N``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.io.corpus import read_corpus
from cls_app.io.records import load_labeled
from cls_app.io.table_stream import TableReader
from cls_app.text.tokenizer import CharTokenizer

from .conftest import ROOT, TINY_MODEL_ARGS, run_main, toy_texts, write_csv
from .fuzzing import (
    CASES,
    Table,
    delimited_tables,
    garbage_files,
    jsonl_tables,
    left_behind,
    outcome,
    time_bound,
    write_case,
)

PROFILE = os.environ.get("FUZZ_PROFILE", "fuzz-ci")
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))


def fuzz(examples: int):
    """The profile's settings with ``examples`` cases (times FUZZ_SCALE)."""
    return settings(settings.get_profile(PROFILE), max_examples=examples * SCALE)


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.disable(logging.WARNING)  # thousands of expected warnings
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _good(rows: list[tuple]) -> list[tuple[str, str]]:
    return [(t.strip("\r\n"), lab.strip()) for t, lab in rows if t.strip() and lab.strip()]


# --------------------------------------------------------------------------- readers


@fuzz(40)
@given(garbage_files())
def test_readers_on_garbage(cases_dir: Path, file) -> None:
    path = write_case(cases_dir, *file)
    for name, read in (("load_labeled", lambda: load_labeled(path, on_bad_row="skip")),
                       ("TableReader", lambda: sum(len(c) for c in TableReader(path, chunk_rows=3).chunks())),
                       ("read_corpus", lambda: len(read_corpus([str(path)]))),
                       ("vocab.txt", lambda: len(CharTokenizer.from_file(path)))):
        outcome(name, read)


@fuzz(40)
@given(st.one_of(delimited_tables(), jsonl_tables()), st.sampled_from(["skip", "error", "warn"]))
def test_labeled_tables_account_for_every_row(cases_dir: Path, table: Table, on_bad_row: str) -> None:
    path = write_case(cases_dir, table.data, table.ext)
    kind, data = outcome("load_labeled", lambda: load_labeled(path, on_bad_row=on_bad_row))
    if kind == "error":
        return
    assert len(data) + data.skipped == len(table.rows)  # every row kept, or skipped and counted
    if on_bad_row == "error":
        assert data.skipped == 0
    if table.fmt != "jsonl" and table.unambiguous:  # decoded for sure: the very texts and labels
        assert list(zip(data.texts, data.labels, strict=True)) == _good(table.rows)


@fuzz(30)
@given(delimited_tables())
def test_table_reader_keeps_every_row_and_cell(cases_dir: Path, table: Table) -> None:
    """predict's streaming reader: one row out per row in, cells as written."""
    path = write_case(cases_dir, table.data, table.ext)
    kind, chunks = outcome("TableReader", lambda: list(TableReader(path, text_col="text", chunk_rows=3).chunks()))
    if kind == "ok" and table.unambiguous:
        texts = [t for c in chunks for t in c.texts]
        assert texts == [t for t, _ in table.rows]


# --------------------------------------------------------------------------- model folders


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT folder and two baseline folders to corrupt."""
    folder = tmp_path_factory.mktemp("models")
    train = write_csv(folder / "train.csv", *toy_texts(80, 1))
    from cls_app.commands import main

    assert main(["-q", "train", "--train", str(train), "--out", str(folder / "bert"), "--epochs", "1",
                 "--no-cache", "--threads", "1", *TINY_MODEL_ARGS]) == 0
    assert main(["-q", "baseline", "--train", str(train), "--out", str(folder / "base"),
                 "--models", "char_lr", "majority"]) == 0
    return {"bert": folder / "bert", "char_lr": folder / "base" / "char_lr", "majority": folder / "base" / "majority",
            "train": train}


FOLDER_FILES = {"bert": ["config.json", "vocab.txt", "model.safetensors"],
                "char_lr": ["baseline.json", "model.json", "model.safetensors"],
                "majority": ["baseline.json", "model.json", "model.safetensors"]}
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=5)


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[str, str, str, object]:
    """(folder kind, file, how, new bytes or None to delete)."""
    kind = draw(st.sampled_from(sorted(FOLDER_FILES)))
    name = draw(st.sampled_from(FOLDER_FILES[kind]))
    how = draw(st.sampled_from(["truncate", "garbage", "flip", "empty", "delete", "json", "splice"]))
    return kind, name, how, draw(st.data())


def _corrupt(data: bytes, name: str, how: str, draw) -> bytes | None:
    if how == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if how == "garbage":
        return draw(st.binary(max_size=300))
    if how == "flip":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b)
    if how == "empty":
        return b""
    if how == "delete":
        return None
    if how == "splice":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.binary(max_size=60)) + data[i:]
    value = draw(json_values)
    if name.endswith(".json"):  # one key of the real file (or of its cls_app section) replaced
        obj = json.loads(data)
        key = draw(st.sampled_from(sorted(obj)))
        if isinstance(obj[key], dict) and obj[key] and draw(st.booleans()):
            obj[key][draw(st.sampled_from(sorted(obj[key])))] = value
        else:
            obj[key] = value
        value = obj
    return json.dumps(value).encode()


@fuzz(25)
@given(corruptions())
def test_corrupt_model_folders_load_or_fail_cleanly(models, cases_dir: Path, corruption) -> None:
    from cls_app.models import load

    kind, name, how, data = corruption
    folder = write_case(cases_dir, b"", ".model")
    folder.unlink()
    shutil.copytree(models[kind], folder)
    new = _corrupt((folder / name).read_bytes(), name, how, data.draw)
    if new is None:
        (folder / name).unlink()
    else:
        (folder / name).write_bytes(new)
    kind_, probs = outcome("model folder", lambda: load(str(folder), batch_size=8, threads=1).predict_proba(
        ["这个好", "", "x" * 3000]))
    if kind_ == "ok":
        assert probs.shape[0] == 3
    shutil.rmtree(folder)


# --------------------------------------------------------------------------- commands' file arguments


def any_input() -> st.SearchStrategy:
    return st.one_of(garbage_files(), delimited_tables(), jsonl_tables())


def _as_file(case) -> tuple[bytes, str, list | None]:
    if isinstance(case, Table):
        return case.data, case.ext, case.rows
    return case[0], case[1], None


def _cli(capsys, name: str, *args: str) -> tuple[int, str]:
    CASES[name] += 1
    with time_bound():
        rc, _, err = run_main(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    if rc != 0:
        assert rc == 2 and lines and lines[-1].startswith("error: "), err
        assert sum(line.startswith("error:") for line in lines) == 1, err
    return rc, err


def _read_output(path: Path) -> list:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh, delimiter="," if path.suffix == ".csv" else "\t"))[1:]


@fuzz(12)
@given(any_input(), st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_predict_input(models, cases_dir: Path, capsys, case, out_ext: str) -> None:
    data, ext, rows = _as_file(case)
    path = write_case(cases_dir, data, ext)
    out = cases_dir / f"pred{CASES['predict --input']}{out_ext}"
    rc, err = _cli(capsys, "predict --input", "predict", "--model", str(models["char_lr"]), "--input", str(path),
                   "--output", str(out), "--chunk-size", "3")
    assert not left_behind(cases_dir)
    if rc != 0:
        assert not out.exists()  # nothing half-written
        return
    if rows is not None and case.unambiguous and ext != ".jsonl":
        assert len(_read_output(out)) == len(rows), err  # every input row, once


@fuzz(6)
@given(any_input())
def test_evaluate_data(models, cases_dir: Path, capsys, case) -> None:
    path = write_case(cases_dir, *_as_file(case)[:2])
    out = cases_dir / f"eval{CASES['evaluate --data']}"
    rc, _ = _cli(capsys, "evaluate --data", "evaluate", "--model", str(models["char_lr"]), "--data", str(path),
                 "--out", str(out), "--on-bad-row", "skip")
    assert not left_behind(cases_dir)
    assert (out / "metrics.json").is_file() == (rc == 0)


@fuzz(6)
@given(any_input())
def test_baseline_train(cases_dir: Path, capsys, case) -> None:
    path = write_case(cases_dir, *_as_file(case)[:2])
    out = cases_dir / f"base{CASES['baseline --train']}"
    rc, _ = _cli(capsys, "baseline --train", "baseline", "--train", str(path), "--out", str(out), "--models",
                 "majority", "--on-bad-row", "warn")
    assert not left_behind(cases_dir)
    assert (out / "majority" / "model.json").is_file() == (rc == 0)


@fuzz(3)
@given(any_input())
def test_train_train(cases_dir: Path, capsys, case) -> None:
    path = write_case(cases_dir, *_as_file(case)[:2])
    out = cases_dir / f"bert{CASES['train --train']}"
    rc, _ = _cli(capsys, "train --train", "train", "--train", str(path), "--out", str(out), "--epochs", "1",
                 "--no-cache", "--threads", "1", "--on-bad-row", "skip", *TINY_MODEL_ARGS)
    assert not left_behind(cases_dir)
    assert (out / "metrics.json").is_file() == (rc == 0)


@fuzz(3)
@given(any_input())
def test_pretrain_corpus(cases_dir: Path, capsys, case) -> None:
    path = write_case(cases_dir, *_as_file(case)[:2])
    out = cases_dir / f"pre{CASES['pretrain --corpus']}"
    rc, _ = _cli(capsys, "pretrain --corpus", "pretrain", "--corpus", str(path), "--out", str(out), "--steps", "1",
                 "--batch-size", "2", "--max-len", "16", "--layers", "1", "--hidden", "16", "--heads", "2",
                 "--intermediate", "32", "--min-freq", "1", "--threads", "1")
    assert not left_behind(cases_dir)
    assert (out / "pretrain_summary.json").is_file() == (rc == 0)


@fuzz(3)
@given(any_input())
def test_compare_data(models, cases_dir: Path, capsys, case) -> None:
    path = write_case(cases_dir, *_as_file(case)[:2])
    out = cases_dir / f"cmp{CASES['compare --data']}"
    rc, _ = _cli(capsys, "compare --data", "compare", "--models", str(models["char_lr"]), str(models["majority"]),
                 "--data", str(path), "--out", str(out), "--bootstrap", "10")
    assert not left_behind(cases_dir)
    assert (out / "comparison.json").is_file() == (rc == 0)


@pytest.mark.slow
@fuzz(1)
@given(garbage_files())
def test_predict_subprocess(models, cases_dir: Path, case) -> None:
    """The real program on a real command line: exit 0 or 2, one error line, no traceback."""
    path = write_case(cases_dir, *case)
    out = cases_dir / "sub.csv"
    CASES["run.py predict"] += 1
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "predict", "--model", str(models["majority"]),
                           "--input", str(path), "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 2:
        assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and not out.exists()
