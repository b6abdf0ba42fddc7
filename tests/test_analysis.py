"""Error analysis and calibration: errors.csv, confused pairs, top-k accuracy, ECE."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cls_app.evaluation.calibration import ECE_BINS, calibration
from cls_app.evaluation.errors import confused_pairs, error_table, pairs_frame, top_k_accuracy

LABELS = ["a", "b", "c"]


def _example():
    texts = ["t1", "t2", "t3", "t4", "t5"]
    y = np.array([0, 0, 1, 2, 2])
    proba = np.array([
        [0.8, 0.1, 0.1],   # right
        [0.2, 0.7, 0.1],   # a -> b, p 0.7
        [0.1, 0.3, 0.6],   # b -> c, p 0.6
        [0.05, 0.9, 0.05],  # c -> b, p 0.9
        [0.3, 0.2, 0.5],   # right
    ])
    return texts, y, proba


def test_error_table_lists_every_wrong_row_most_confident_first() -> None:
    texts, y, proba = _example()
    table = error_table(texts, y, proba, LABELS, rows=[2, 3, 4, 5, 6])
    assert list(table["row"]) == [5, 3, 4]
    assert list(table["gold"]) == ["c", "a", "b"]
    assert list(table["predicted"]) == ["b", "b", "c"]
    assert table["probability"].tolist() == [0.9, 0.7, 0.6]
    assert table["margin"].tolist() == pytest.approx([0.85, 0.5, 0.3])


def test_confused_pairs_count_and_examples() -> None:
    texts = [f"t{i}" for i in range(6)]
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = [1, 1, 0, 0, 1, 2]
    proba = np.eye(3)[pred] * 0.5 + 0.5 / 3
    proba[1, 1] += 0.1  # row 2 is the more confident a -> b error
    table = error_table(texts, y, proba, LABELS)
    pairs = confused_pairs(table, y, LABELS, examples=1)
    assert [(p["gold"], p["predicted"], p["count"]) for p in pairs] == [("a", "b", 2), ("b", "a", 1)]
    assert pairs[0]["share_of_gold"] == pytest.approx(2 / 3, abs=1e-4)
    assert pairs[0]["examples"] == [{"row": 2, "text": "t1", "probability": pytest.approx(proba[1, 1], abs=1e-6)}]
    assert list(pairs_frame(pairs)["count"]) == [2, 1]


def test_top_k_accuracy() -> None:
    _, y, proba = _example()
    assert top_k_accuracy(y, proba, 1) == pytest.approx(2 / 5)
    # gold ranks 0, 1, 1, 1, 0 (row 4: gold c ties with a at .05, a tie counts for gold)
    assert top_k_accuracy(y, proba, 2) == pytest.approx(5 / 5)
    assert top_k_accuracy(y[:2], np.full((2, 3), np.nan), 1) == 0.0


def test_ece_by_hand() -> None:
    # two rows at confidence 0.9 (one right), two at 0.6 (both right)
    y = np.array([0, 1, 0, 0])
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    cal = calibration(y, proba)
    assert cal["bins"] == ECE_BINS == 15
    # bin of 0.9: accuracy 0.5, confidence 0.9 -> gap 0.4; bin of 0.6: accuracy 1, conf 0.6 -> gap 0.4
    assert cal["ece"] == pytest.approx(0.4)
    assert cal["mce"] == pytest.approx(0.4)
    assert sum(b["count"] for b in cal["table"]) == 4


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.just(3)), elements=st.floats(0.01, 1.0)),
       st.integers(0, 2**31 - 1))
def test_ece_is_the_weighted_bin_gap(raw, seed) -> None:
    proba = raw / raw.sum(axis=1, keepdims=True)
    y = np.random.default_rng(seed).integers(0, 3, len(proba))
    cal = calibration(y, proba)
    assert 0.0 <= cal["ece"] <= cal["mce"] + 1e-9 <= 1.0 + 1e-9
    conf, right = proba.max(axis=1), proba.argmax(axis=1) == y
    expect = 0.0
    for b in cal["table"]:
        sel = (conf > b["lower"]) & (conf <= b["upper"])
        if b["lower"] == 0.0:
            sel |= conf == 0
        assert sel.sum() == b["count"]
        if sel.any():
            expect += sel.mean() * abs(right[sel].mean() - conf[sel].mean())
    assert cal["ece"] == pytest.approx(expect, abs=1e-5)


def test_perfect_confident_model_has_zero_ece() -> None:
    y = np.array([0, 1, 2, 1])
    cal = calibration(y, np.eye(3)[y])
    assert cal["ece"] == 0.0 and cal["accuracy"] == 1.0


def _flip(path, rows: list[int]):
    """Flip the gold label of the given data rows (0-based) of a toy CSV; return their file lines."""
    import pandas as pd

    frame = pd.read_csv(path)
    for i in rows:
        frame.loc[i, "label"] = "负面" if frame.loc[i, "label"] == "正面" else "正面"
    frame.to_csv(path, index=False)
    return [i + 2 for i in rows]  # header is line 1


@pytest.mark.slow
def test_evaluate_writes_errors_calibration_and_html(tmp_path, toy_files, capsys) -> None:
    import json

    import pandas as pd

    from tests.conftest import run_main

    lines = _flip(toy_files["test"], [3, 17, 40])
    rc, _, err = run_main(capsys, "-q", "baseline", "--train", str(toy_files["train"]), "--out", str(tmp_path / "b"),
                          "--models", "char_lr")
    assert rc == 0, err
    rc, out, err = run_main(capsys, "evaluate", "--model", str(tmp_path / "b" / "char_lr"), "--data",
                            str(toy_files["test"]), "--out", str(tmp_path / "ev"))
    assert rc == 0, err
    ev = tmp_path / "ev"
    errors = pd.read_csv(ev / "errors.csv")
    assert sorted(errors["row"]) == lines  # the flipped rows, by their file line
    assert list(errors["probability"]) == sorted(errors["probability"], reverse=True)
    assert list(errors["margin"]) == pytest.approx(list(errors["probability"] - errors["gold_probability"]), abs=2e-6)
    metrics = json.loads((ev / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["errors"]["count"] == 3 and metrics["calibration"]["bins"] == 15
    assert "top2_accuracy" not in metrics  # two classes: top-2 is always right, not reported
    pairs = pd.read_csv(ev / "confused_pairs.csv")
    assert pairs["count"].sum() == 3
    assert (ev / "reliability.png").stat().st_size > 5000 and (ev / "report.html").is_file()
    assert "ECE=" in out and "most confused class pairs" in (ev / "report.txt").read_text(encoding="utf-8")


def test_train_test_report_has_the_error_analysis(tmp_path, toy_files, capsys) -> None:
    from tests.conftest import TINY_MODEL_ARGS, run_main

    out = tmp_path / "m"
    rc, stdout, err = run_main(capsys, "train", "--train", str(toy_files["train"]), "--dev", str(toy_files["dev"]),
                               "--test", str(toy_files["test"]), "--out", str(out), *TINY_MODEL_ARGS, "--epochs", "1",
                               "--threads", "1", "--no-cache")
    assert rc == 0, err
    names = {p.name for p in (out / "test_eval").iterdir()}
    assert {"errors.csv", "confused_pairs.csv", "reliability.png", "report.html", "metrics.json"} <= names
    assert "ECE=" in stdout
