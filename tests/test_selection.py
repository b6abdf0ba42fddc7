"""A recommendation users can trust: calibration (a temperature fitted on dev), decisions for the metric
(per-class offsets kept only when their cross-fitted dev score wins), and a selection that dev noise does
not decide (paired bootstrap, a rule among the candidates dev cannot separate)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app import TextClassifier, load
from cls_app.evaluation.recommend import SEPARATED, Candidate, pointer, select
from cls_app.tasks import SingleLabel, task_from_settings
from cls_app.tasks.calibration import (
    calibrate,
    calibration,
    fit_decisions,
    fit_offsets,
    log_probs,
    metric_of,
    softmax,
)

from .conftest import run_main, toy_texts, write_csv


def _imbalanced(n: int, seed: int, minority: float = 0.1, shift: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Three classes, the last rare, and scores that under-rate it (argmax hardly ever picks it)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[(1 - minority) / 2, (1 - minority) / 2, minority])
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y]
    logits[:, 2] -= shift
    return y, softmax(logits)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(2, 6), st.floats(0.3, 10.0), st.integers(0, 10_000))
def test_calibration_keeps_the_ranking_and_inverts(n, k, t, seed) -> None:
    p = softmax(np.random.default_rng(seed).normal(size=(n, k)) * 2)  # no probability near the 1e-12 clip
    c = calibrate(p, t)
    assert np.allclose(c.sum(axis=1), 1.0) and (c.argmax(axis=1) == p.argmax(axis=1)).all()
    assert np.allclose(calibrate(c, 1.0 / t), p, atol=1e-8)
    assert np.isnan(calibrate(np.vstack([p, np.full(k, np.nan)]), t)[-1]).all()


def test_the_temperature_makes_an_over_confident_model_honest() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 4)) * 2
    y = np.array([rng.choice(4, p=row) for row in softmax(z)])
    over = softmax(z * 3)  # three times too sure
    fit = fit_decisions(y, over, "accuracy")
    assert fit.temperature == pytest.approx(3.0, rel=0.15)
    assert fit.report["ece_after"] < 0.03 < fit.report["ece_before"]
    assert calibration(y, calibrate(over, fit.temperature))["ece"] == pytest.approx(fit.report["ece_after"])


def test_offsets_rescue_an_under_predicted_minority_class_and_are_cross_fitted() -> None:
    y, p = _imbalanced(1200, 1)
    plain = metric_of(y, p.argmax(axis=1), 3, "macro_f1")
    fit = fit_decisions(y, p, "macro_f1")
    assert fit.offsets is not None and fit.offsets[2] > 0  # the rare class is raised
    assert fit.report["cross_fitted"] > fit.report["plain"] + 0.02
    assert metric_of(y, fit.dev_pred, 3, "macro_f1") == pytest.approx(fit.report["cross_fitted"])
    # on fresh rows of the same distribution the offsets keep their gain
    y2, p2 = _imbalanced(3000, 2)
    task = SingleLabel(fit.temperature, tuple(fit.offsets), "macro_f1")
    fresh = metric_of(y2, task.decide(task.calibrate(p2), ["a", "b", "c"]), 3, "macro_f1")
    assert fresh > metric_of(y2, p2.argmax(axis=1), 3, "macro_f1") + 0.02 and plain < fresh


def test_offsets_that_do_not_help_are_not_kept() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=900)
    p = softmax(rng.normal(size=(900, 3)) + 3.0 * np.eye(3)[y])  # balanced and well separated
    fit = fit_decisions(y, p, "macro_f1")
    assert fit.offsets is None and "not kept" in fit.report["offsets"]
    assert (fit.dev_pred == calibrate(p, fit.temperature).argmax(axis=1)).all()
    small = fit_decisions(y[:50], p[:50], "macro_f1")
    assert small.offsets is None and "50 dev rows" in small.report["offsets"]


def test_fit_offsets_never_lowers_the_metric() -> None:
    for seed in range(5):
        y, p = _imbalanced(300, seed, minority=0.2)
        b = fit_offsets(log_probs(p), y, "macro_f1")
        assert abs(b.mean()) < 1e-5
        assert metric_of(y, (log_probs(p) + b).argmax(axis=1), 3, "macro_f1") >= metric_of(y, p.argmax(axis=1), 3,
                                                                                           "macro_f1")


def test_the_task_records_decides_and_ranks_with_offsets() -> None:
    task = SingleLabel(2.0, (0.0, 0.0, 3.0), "macro_f1")
    again = task_from_settings(task.folder_fields())
    assert again == task and SingleLabel().folder_fields() == {}
    probs = np.array([[0.6, 0.35, 0.05], [np.nan] * 3])
    assert task.decide(probs, ["a", "b", "c"]).tolist() == [2, -1]
    (first, empty) = task.predictions(probs, ["a", "b", "c"], top_k=2)
    assert first.label == "c" and first.prob == pytest.approx(0.05) and [n for n, _ in first.top] == ["c", "a"]
    assert empty.label is None
    assert task.output_values(probs, ["a", "b", "c"], 2)[0][:3] == ["c", pytest.approx(0.05), "a"]
    assert task.service_items(probs[:1], ["a", "b", "c"], 1)[0]["label"] == "c"


def _candidate(name: str, family: str, score: float, pred: np.ndarray, log_loss: float = 0.5) -> Candidate:
    return Candidate(name, Path("/run") / name, family, {"macro_f1": score}, "dev", pred, log_loss)


def test_selection_separates_or_applies_the_rule() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=1000)
    good = np.where(rng.random(1000) < 0.9, y, 1 - y)  # 90 % right
    near = np.where(rng.random(1000) < 0.895, y, 1 - y)
    bad = np.where(rng.random(1000) < 0.7, y, 1 - y)
    score = {k: metric_of(y, v, 2, "macro_f1") for k, v in (("good", good), ("near", near), ("bad", bad))}
    found = [_candidate("svm", "baseline", score["good"], good, 0.6),
             _candidate("ensemble", "ensemble", score["near"], near, 0.3),
             _candidate("bert", "bert", score["bad"], bad, 0.2)]
    chosen = select(found, "macro_f1", y)
    assert chosen.leader.name == "svm" and [c.name for c in chosen.tied] == ["ensemble"]
    assert chosen.best.name == "ensemble" and chosen.separation["bert"]["leader_better"] >= SEPARATED
    assert select(found, "macro_f1", y, rule="leader").best.name == "svm"
    assert select(found, "macro_f1", y, rule="log_loss").best.name == "ensemble"  # bert is separated: not in the pool
    info = pointer(chosen, found, "macro_f1", Path("/run"))
    assert info["path"] == "ensemble" and "cannot separate" in info["why"] and info["selection"]["tied"] == ["ensemble"]
    # a leader far ahead of everyone is chosen whatever the rule
    far = [_candidate("svm", "baseline", score["good"], good), _candidate("ensemble", "ensemble", score["bad"], bad)]
    assert select(far, "macro_f1", y).best.name == "svm" and "separates it" in pointer(
        select(far, "macro_f1", y), far, "macro_f1", Path("/run"))["why"]


def _imbalanced_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """The toy task with a rare third class whose characters overlap the others'."""
    rng = np.random.default_rng(seed)
    texts, labels = toy_texts(n, seed)
    for i in range(n):
        if rng.random() < 0.12:
            texts[i] = texts[i][:4] + "一般般还行" [: int(rng.integers(1, 4))]
            labels[i] = "中性"
    return texts, labels


def test_baselines_are_calibrated_and_decide_for_the_metric_everywhere(tmp_path, capsys) -> None:
    train, dev, test = _imbalanced_texts(600, 1), _imbalanced_texts(300, 2), _imbalanced_texts(300, 3)
    model = TextClassifier(kind="char_svm").fit(*train, dev=dev)
    assert model.task.temperature is not None and model.decisions["ece_after"] <= model.decisions["ece_before"]
    folder = model.save(tmp_path / "svm")
    meta = json.loads((folder / "baseline.json").read_text(encoding="utf-8"))
    assert meta["calibration"]["temperature"] == pytest.approx(model.task.temperature, rel=1e-5)
    assert meta["decisions"]["metric"] == "macro_f1" and meta["dev"]["n"] == 300
    loaded = load(folder)
    assert loaded.task == model.task
    np.testing.assert_allclose(loaded.predict_proba(test[0]), model.predict_proba(test[0]))
    # evaluate reports the calibration before and after, and decides as predict does
    data = write_csv(tmp_path / "test.csv", *test)
    rc, out, err = run_main(capsys, "evaluate", "--model", str(folder), "--data", str(data), "--out",
                            str(tmp_path / "ev"))
    assert rc == 0, err
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    assert report["calibration"]["temperature"] == pytest.approx(model.task.temperature, rel=1e-5)
    assert "before the temperature" in out and "before" in report["calibration"]
    predicted = [p.label for p in loaded.predict(test[0])]
    assert report["accuracy"] == pytest.approx(np.mean([a == b for a, b in zip(predicted, test[1], strict=True)]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(-1, 4)), max_size=40), st.integers(1, 5))
def test_metrics_from_counts_equal_scikit_learns(pairs, k) -> None:
    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    from cls_app.tasks import compute_metrics

    rows = [(t % k, p if p < k else p % k) for t, p in pairs]
    y = np.array([t for t, _ in rows], dtype=np.int64)
    pred = np.array([p for _, p in rows], dtype=np.int64)
    labels = [f"c{i}" for i in range(k)]
    got = compute_metrics(y, pred, labels)
    assert got["n"] == len(y)
    if not len(y):
        assert got["accuracy"] == 0.0 and got["confusion_matrix"] == [[0] * k for _ in range(k)]
        return
    ids = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scikit-learn's "a single label was found", for one class
        want = classification_report(y, pred, labels=ids, target_names=labels, output_dict=True, zero_division=0)
        macro = f1_score(y, pred, labels=ids, average="macro", zero_division=0)
        weighted = f1_score(y, pred, labels=ids, average="weighted", zero_division=0)
        matrix = confusion_matrix(y, pred, labels=ids).tolist()
    assert got["accuracy"] == pytest.approx(float(np.mean(y == pred)))
    assert got["macro_f1"] == pytest.approx(macro) and got["weighted_f1"] == pytest.approx(weighted)
    for name in labels:
        assert got["per_class"][name] == pytest.approx(want[name])
    assert got["confusion_matrix"] == matrix
