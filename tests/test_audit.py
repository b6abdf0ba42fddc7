"""``run.py audit``: planted wrong labels, duplicates, conflicts and leaks are found and ranked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cls_app.evaluation.audit import exact_groups, near_pairs, normalize
from tests.conftest import TINY_MODEL_ARGS, run_main, toy_texts, write_csv


def test_normalize_and_groups() -> None:
    assert normalize(" ＡＢ c\t好 ") == "abc好"
    assert exact_groups(["a b", "x", "AB", "y", "x"]) == [[0, 2], [1, 4]]


def test_near_pairs_within_and_across() -> None:
    a = ["今天股市大涨三个百分点收盘", "明天会下雨吗我不知道呢", "今天股市大涨三个百分点收盘了"]
    assert [(i, j) for i, j, _ in near_pairs(a, None, 0.8)] == [(0, 2)]
    assert [(i, j) for i, j, _ in near_pairs(a, ["明天会下雨吗我不知道呢!"], 0.8)] == [(1, 0)]


def test_audit_finds_planted_problems(tmp_path, capsys) -> None:
    texts, labels = toy_texts(600, 7)
    flipped = sorted(np.random.default_rng(1).choice(range(50, 600), 30, replace=False).tolist())  # 5 % noise
    for i in flipped:
        labels[i] = "负面" if labels[i] == "正面" else "正面"
    texts[20] = texts[22]  # an exact duplicate with the same label (rows 20 and 22 are both 正面)
    texts[31], labels[31] = "这个完全相同的文字", "正面"  # identical texts, different labels
    texts[33], labels[33] = "这个完全相同的文字", "负面"
    train = write_csv(tmp_path / "train.csv", texts, labels)
    test = write_csv(tmp_path / "test.csv", [texts[40], "别的文字"], [labels[40], "正面"])
    out = tmp_path / "audit"
    rc, stdout, err = run_main(capsys, "audit", "--train", str(train), "--test", str(test), "--out", str(out),
                               "--folds", "4")
    assert rc == 0, err
    issues = pd.read_csv(out / "label_issues.csv", keep_default_na=False)
    line = {i: i + 2 for i in range(len(texts))}  # CSV: header is line 1
    label_rows = set(issues.loc[issues.reason == "label issue", "row"])
    found = {line[i] for i in flipped} & label_rows
    assert len(found) >= 0.9 * len(flipped) and len(found) >= 0.9 * len(label_rows)  # recall, precision
    flagged = issues[issues.reason == "label issue"].set_index("row")
    for i in flipped:  # the suggestion is the true (unflipped) label
        if line[i] in found:
            assert flagged.loc[line[i], "suggested_label"] != labels[i]
    assert set(issues.loc[issues.reason == "conflicting labels", "row"]) == {line[31], line[33]}
    assert line[22] in set(issues.loc[issues.reason == "duplicate: exact", "row"])
    leak = issues[issues.reason == "leak: exact"]
    assert list(leak.row) == [line[40]] and "test.csv row 2" in leak.related.iloc[0]
    order = list(dict.fromkeys(issues.reason))  # ranked: conflicts, label issues, leaks, duplicates
    assert order.index("conflicting labels") < order.index("label issue") < order.index("leak: exact")
    summary = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert summary["counts"]["conflicting labels"] == 2 and summary["settings"]["folds"] == 4
    assert "label issue" in stdout and "most suspicious rows" in stdout


def test_audit_user_errors(tmp_path, capsys) -> None:
    train = write_csv(tmp_path / "train.csv", *toy_texts(20, 1))
    rc, _, err = run_main(capsys, "audit", "--train", str(train), "--folds", "50", "--out", str(tmp_path / "a"))
    assert rc == 2 and "--folds must be between 2" in err and not (tmp_path / "a").exists()
    rc, _, err = run_main(capsys, "audit", "--train", str(tmp_path / "missing.csv"))
    assert rc == 2 and "missing.csv" in err


def test_audit_with_bert_folds(tmp_path, capsys) -> None:
    """The BERT kind: a tiny BERT per fold; its out-of-fold probabilities land on the right rows and classes."""
    texts, labels = toy_texts(300, 3)
    train = write_csv(tmp_path / "train.csv", texts, labels)
    out = tmp_path / "audit"
    rc, stdout, err = run_main(capsys, "audit", "--train", str(train), "--out", str(out), "--folds", "2",
                               "--model-kind", "bert", *TINY_MODEL_ARGS, "--epochs", "6", "--lr", "5e-3",
                               "--threads", "1")
    assert rc == 0, err
    summary = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert summary["settings"]["model_kind"] == "bert" and summary["settings"]["bert"]["layers"] == 1
    assert summary["out_of_fold_accuracy"] > 0.8  # a swapped class or row order would give ~0.5 or less
