"""The comparison report and its significance tests."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.evaluation.compare import ModelResult, mcnemar_exact, paired_bootstrap_ci, significance, write_report

LABELS = ["甲", "乙"]


def _pairs(b: int, c: int, both_right: int = 5, both_wrong: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors with b texts only A gets right and c texts only B gets right."""
    a = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    bb = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    return np.array(a), np.array(bb)


@pytest.mark.parametrize(("b", "c", "expected"), [
    (10, 0, 2 / 2**10),  # all 10 discordant texts favour A: p = 2 * 0.5^10
    (6, 2, 2 * (comb(8, 0) + comb(8, 1) + comb(8, 2)) / 2**8),  # = 74/256
    (4, 4, 1.0),
    (0, 0, 1.0),  # no discordant texts: no evidence of any difference
])
def test_mcnemar_exact_known_answers(b, c, expected) -> None:
    a, bb = _pairs(b, c)
    r = mcnemar_exact(a, bb)
    assert r["a_right_b_wrong"] == b and r["a_wrong_b_right"] == c
    assert r["p_value"] == pytest.approx(expected, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200))
def test_mcnemar_is_symmetric_and_a_probability(pairs) -> None:
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    ab, ba = mcnemar_exact(a, b), mcnemar_exact(b, a)
    assert ab["p_value"] == pytest.approx(ba["p_value"])
    assert 0.0 < ab["p_value"] <= 1.0
    assert ab["a_right_b_wrong"] == ba["a_wrong_b_right"]


def test_paired_bootstrap_interval() -> None:
    same = np.array([True, False] * 50)
    assert paired_bootstrap_ci(same, same) == (0.0, 0.0)
    assert paired_bootstrap_ci(np.ones(50, bool), np.zeros(50, bool)) == (1.0, 1.0)
    a, b = _pairs(30, 10, both_right=50, both_wrong=10)  # accuracy difference 0.2
    low, high = paired_bootstrap_ci(a, b, n_resamples=2000, seed=1)
    assert low < 0.2 < high and low > 0.0  # 30 vs 10 discordant: clearly above zero


def _result(name: str, kind: str, correct: list[bool], acc_f1: tuple[float, float], train_s, speed, size,
            floor: bool = False) -> ModelResult:
    accuracy, f1 = acc_f1
    per_class = {lab: {"f1-score": f1} for lab in LABELS}
    metrics = {"accuracy": accuracy, "macro_f1": f1, "weighted_f1": f1, "per_class": per_class}
    return ModelResult(name=name, kind=kind, path=Path(name), metrics=metrics, correct=np.array(correct),
                       predict_seconds=len(correct) / speed, size_bytes=size, train_seconds=train_s, floor=floor)


def test_report_lists_every_model_and_marks_the_best(tmp_path) -> None:
    n = 20
    results = [
        _result("bert_a", "bert", [True] * 18 + [False] * 2, (0.9, 0.88), 100.0, 50.0, 4_000_000),
        _result("char_svm", "baseline", [True] * 16 + [False] * 4, (0.8, 0.79), 2.0, 5000.0, 900_000),
        _result("word_nb", "baseline", [True] * 14 + [False] * 6, (0.7, 0.69), 0.5, 2000.0, 300_000),
        _result("majority", "baseline", [True] * 10 + [False] * 10, (0.5, 0.33), 0.001, 1e6, 10, floor=True),
    ]
    sig = significance(results)
    assert (sig["a"], sig["b"]) == ("bert_a", "char_svm")
    _, paths = write_report(results, LABELS, sig, tmp_path, "test.csv")
    md = paths["md"].read_text(encoding="utf-8")
    rows = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"bert_a", "char_svm", "word_nb", "majority"}
    assert "**0.9000**" in rows["bert_a"] and "**0.8800**" in rows["bert_a"]  # accuracy, F1
    assert "**0.500**" in rows["word_nb"]  # fastest training among ranked models
    assert "**5,000**" in rows["char_svm"]  # highest throughput among ranked models
    assert "**0.30**" in rows["word_nb"]  # smallest
    assert "**" not in rows["majority"]  # the floor is never marked best
    assert "McNemar" in md and f"{n} texts" in md

    csv = pd.read_csv(paths["csv"], dtype=str)
    assert list(csv["model"]) == ["bert_a", "char_svm", "word_nb", "majority", "best"]
    best = csv.set_index("model").loc["best"]
    assert best["accuracy"] == "bert_a" and best["f1_甲"] == "bert_a"
    assert best["texts_per_s"] == "char_svm" and best["size_mb"] == "word_nb"
    summary = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert [m["name"] for m in summary["models"]] == ["bert_a", "char_svm", "word_nb", "majority"]
    assert summary["significance"]["a_right_b_wrong"] == 2  # texts 17, 18
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
