"""Imbalanced classes: balanced loss weights, deterministic oversampling, per-class recall reports."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cls_app.tasks.loss import balanced_class_weights
from cls_app.text.batching import oversampled_indices
from cls_app.training.pipeline import warn_collapsed
from cls_app.training.trainer import epoch_batches, epoch_size

from .conftest import TINY_MODEL_ARGS, run_main, toy_texts, write_csv


def test_balanced_class_weights() -> None:
    y = [0] * 90 + [1] * 10
    w = balanced_class_weights(y, 3).tolist()  # class 2 absent: weight 1
    assert w == pytest.approx([100 / (2 * 90), 100 / (2 * 10), 1.0])


@given(st.lists(st.integers(0, 3), min_size=1, max_size=80), st.integers(0, 2**31))
def test_oversampling_balances_classes_and_keeps_every_example(labels: list[int], seed: int) -> None:
    idx = oversampled_indices(labels, np.random.default_rng(seed))
    counts = np.bincount(np.asarray(labels)[idx])
    present = counts[counts > 0]
    assert (present == max(np.bincount(labels))).all()  # every class as large as the largest
    assert set(range(len(labels))) <= set(idx.tolist())  # nothing dropped
    assert len(idx) == epoch_size(labels, oversample=True)
    np.testing.assert_array_equal(idx, oversampled_indices(labels, np.random.default_rng(seed)))


def test_oversampled_epochs_are_deterministic_and_differ_by_epoch() -> None:
    labels = [0] * 30 + [1] * 5
    lengths = list(range(35))
    a = epoch_batches(lengths, 8, 42, 0, True, labels=labels, oversample=True)
    b = epoch_batches(lengths, 8, 42, 0, True, labels=labels, oversample=True)
    c = epoch_batches(lengths, 8, 42, 1, True, labels=labels, oversample=True)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert sorted(np.concatenate(a).tolist()) != sorted(np.concatenate(c).tolist())  # repeats drawn anew
    assert sum(len(x) for x in a) == 60
    # without oversampling the epoch is unchanged: every index once
    plain = epoch_batches(lengths, 8, 42, 0, True, labels=labels)
    assert sorted(np.concatenate(plain).tolist()) == lengths


def test_class_weights_or_oversampling_rescue_a_collapsed_minority_class(capsys, caplog, tmp_path) -> None:
    texts, labels = toy_texts(400, seed=3)
    keep = [i for i, lab in enumerate(labels) if lab == "正面" or i % 20 == 1]  # 200 : 20
    train = write_csv(tmp_path / "train.csv", [texts[i] for i in keep], [labels[i] for i in keep])

    def run(name: str, *flags: str) -> tuple[dict, str]:
        caplog.clear()
        rc, stdout, err = run_main(capsys, "train", "--train", str(train), "--out", str(tmp_path / name),
                                   "--epochs", "2", "--batch-size", "16", "--lr", "2e-3", "--threads", "1",
                                   *TINY_MODEL_ARGS, *flags)
        assert rc == 0, err
        return json.loads((tmp_path / name / "metrics.json").read_text()), stdout

    plain, stdout = run("plain")
    assert "recall" in stdout and "dev (best evaluation)" in stdout  # the final report shows per-class recall
    assert plain["dev"]["per_class_recall"]["负面"] <= 0.5  # the minority class collapses...
    assert "recall 0 for class(es) 负面" in caplog.text  # ...and the run says so
    weighted, _ = run("weighted", "--class-weight", "balanced")
    assert weighted["dev"]["per_class_recall"]["负面"] >= 0.9
    assert weighted["dev"]["macro_f1"] > plain["dev"]["macro_f1"]
    oversampled, _ = run("oversampled", "--oversample")
    assert oversampled["dev"]["per_class_recall"]["负面"] >= 0.9
    # 180 + 18 training rows after the stratified dev split; oversampled to 2 x 180 = 360 -> 23 batches
    assert oversampled["train_rows"] == 198 and oversampled["steps"] == 2 * 23 and plain["steps"] == 2 * 13
    args = json.loads((tmp_path / "weighted" / "training_args.json").read_text())
    assert args["train"]["class_weight"] == "balanced" and args["train"]["metric"] == "macro_f1"


def test_a_collapsed_class_is_called_out(caplog) -> None:
    m = {"per_class": {"多数": {"recall": 1.0, "support": 90}, "少数": {"recall": 0.0, "support": 10}}}
    with caplog.at_level(logging.WARNING):
        warn_collapsed(m, "test")
    assert "recall 0 for class(es) 少数" in caplog.text and "--class-weight balanced" in caplog.text
