"""Ensembles (issue 15): the arithmetic, the fitting guards, the folder format, the command,
and ``train --with-baselines``' recommendation (OUT/ensemble, OUT/best.json)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cls_app.models.ensemble import (
    EnsembleSettings,
    combine,
    cross_fitted_probs,
    fit_ensemble,
    fit_temperature,
    fit_weights,
    log_probs,
)
from cls_app.tasks.calibration import calibrate

from .conftest import noisy_files, run_main, toy_texts, write_csv


def _probs(rng: np.random.Generator, n: int, k: int, scale: float = 2.0) -> np.ndarray:
    z = rng.normal(size=(n, k)) * scale
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


prob_rows = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)),
                   elements=st.floats(0.0, 1.0, allow_nan=False)).filter(lambda a: (a.sum(axis=1) > 1e-3).all())


@settings(max_examples=60, deadline=None)
@given(prob_rows, st.floats(0.2, 5.0), st.sampled_from(["logprob", "prob"]))
def test_combine_gives_distributions_and_one_member_is_itself(raw, t, how):
    p = raw / raw.sum(axis=1, keepdims=True)
    lp = log_probs(p)
    out = combine([lp, lp], [0.3, 0.7], [t, t], how)
    assert out.shape == p.shape and np.allclose(out.sum(axis=1), 1.0)
    alone = combine([lp], [1.0], [1.0], how)
    assert np.allclose(alone, np.clip(p, 1e-12, 1) / np.clip(p, 1e-12, 1).sum(axis=1, keepdims=True), atol=1e-9)
    # a member with weight 0 changes nothing
    other = log_probs(np.roll(p, 1, axis=1))
    assert np.allclose(combine([lp, other], [1.0, 0.0], [t, 1.0], how), combine([lp], [1.0], [t], how))


def test_fit_temperature_recovers_the_temperature_of_the_data():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 4)) * 3
    true = np.exp(z / 2.5) / np.exp(z / 2.5).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in true])
    member = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # over-confident by a factor 2.5
    assert fit_temperature(log_probs(member), y) == pytest.approx(2.5, rel=0.15)


def test_weights_favour_the_informative_member_and_small_dev_sets_are_not_fitted():
    rng = np.random.default_rng(1)
    n, k = 600, 3
    y = rng.integers(0, k, size=n)
    good = np.full((n, k), 0.1)
    good[np.arange(n), y] = 0.8
    flip = rng.random(n) < 0.2  # right 80 % of the time
    good[flip] = np.roll(good[flip], 1, axis=1)
    noise = _probs(rng, n, k)
    fit = fit_ensemble([log_probs(good), log_probs(noise)], y, EnsembleSettings(prune=0.0))  # no pruning
    assert fit.info["fitted"] and fit.weights[0] > 0.8 > fit.weights[1]
    assert sum(fit.weights) == pytest.approx(1.0)
    # shrinkage toward equal weights: 600 / (600 + 200)
    assert fit.info["shrink"] == pytest.approx(0.75)
    raw = fit.info["weights_before_shrink"]
    assert fit.weights[0] == pytest.approx(0.75 * raw[0] + 0.25 * 0.5)
    small = fit_ensemble([log_probs(good[:50]), log_probs(noise[:50])], y[:50], EnsembleSettings())
    assert not small.info["fitted"] and small.weights == [0.5, 0.5] and small.temperatures == [1.0, 1.0]
    assert "min_fit_rows" in small.info["reason"]
    cv = cross_fitted_probs([log_probs(good), log_probs(noise)], y, EnsembleSettings())
    assert cv.shape == (n, k) and 0.75 < (cv.argmax(axis=1) == y).mean() < 0.85


@given(st.integers(0, 10_000), st.integers(2, 4))
@settings(max_examples=25, deadline=None)
def test_weight_fitting_reaches_the_log_loss_minimum(seed, m):
    from scipy.optimize import minimize

    from cls_app.tasks.calibration import log_loss

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=120)
    logps = [log_probs(_probs(rng, 120, 3, scale=float(rng.uniform(0.5, 3)))) for _ in range(m)]
    temps = list(rng.uniform(0.5, 2.0, size=m))

    def loss(w: np.ndarray) -> float:
        return log_loss(combine(logps, w, temps), y)

    w = fit_weights(logps, temps, y)  # exact gradient
    theta = minimize(lambda t: loss(np.exp(t - t.max()) / np.exp(t - t.max()).sum()), np.zeros(m),
                     method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}).x
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert loss(w) <= loss(np.exp(theta - theta.max()) / np.exp(theta - theta.max()).sum()) + 1e-6


def _member(rng: np.random.Generator, y: np.ndarray, right: float) -> np.ndarray:
    """Log-probabilities of a member right on about ``right`` of the rows."""
    n, k = len(y), int(y.max()) + 1
    p = np.full((n, k), 0.2 / (k - 1))
    guess = np.where(rng.random(n) < right, y, rng.integers(0, k, size=n))
    p[np.arange(n), guess] = 0.8
    return log_probs(p)


def test_pruning_drops_members_the_fit_gives_almost_no_weight_and_refits_the_rest():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=800)
    good, other, noise = _member(rng, y, 0.85), _member(rng, y, 0.7), _member(rng, y, 0.0)
    every = fit_ensemble([good, other, noise], y, EnsembleSettings(prune=0.0))
    assert every.info["dropped"] == [] and min(every.info["weights_before_shrink"]) < 0.05
    fit = fit_ensemble([good, other, noise], y, EnsembleSettings(prune=0.05))
    raw = fit.info["weights_before_pruning"]
    assert fit.info["dropped"] == [i for i, w in enumerate(raw) if w < 0.05] and 2 in fit.info["dropped"]
    assert all(fit.weights[i] == 0.0 for i in fit.info["dropped"]) and sum(fit.weights) == pytest.approx(1.0)
    # the rest are refitted among themselves and shrunk toward equal among themselves
    kept = [i for i in range(3) if i not in fit.info["dropped"]]
    alone = fit_ensemble([[good, other, noise][i] for i in kept], y, EnsembleSettings(prune=0.0))
    assert [fit.weights[i] for i in kept] == pytest.approx(alone.weights, abs=1e-6)
    # the cross-fitted probabilities prune inside every fold (each fold's fit decides for itself)
    cv = cross_fitted_probs([good, other, noise], y, EnsembleSettings(prune=0.05))
    assert cv.shape == (800, 3) and np.allclose(cv.sum(axis=1), 1.0)
    with pytest.raises(Exception, match="--prune"):
        EnsembleSettings(prune=0.7).check()


def test_a_pruned_ensemble_keeps_saves_and_reloads_only_its_members(tmp_path):
    import random

    from cls_app import TextClassifier, load

    def noisy(n: int, seed: int) -> tuple[list[str], list[str]]:  # 15 % flipped: members that differ
        texts, labels = toy_texts(n, seed)
        rng = random.Random(seed)
        return texts, [("负面" if x == "正面" else "正面") if rng.random() < 0.15 else x for x in labels]

    texts, labels = noisy(300, 1)
    dev_texts, dev_labels = noisy(150, 2)
    members = [TextClassifier(kind=k).fit(texts, labels) for k in ("char_svm", "word_nb", "majority")]
    ens = TextClassifier.ensemble(members, dev=(dev_texts, dev_labels), cost_share=1.0)  # pruning alone
    pruned = ens.meta["pruned"]  # the majority floor says nothing the others do not
    assert pruned["offered"] == ["char_svm", "word_nb", "majority"] and "majority" in pruned["dropped"]
    assert len(ens.members) == 3 - len(pruned["dropped"]) and ens.meta["settings"]["prune"] == 0.1
    assert [m["name"] for m in ens.meta["members"]] == [n for n in pruned["offered"] if n not in pruned["dropped"]]
    assert sum(m["weight"] for m in ens.meta["members"]) == pytest.approx(1.0, abs=1e-5)
    ens.save(tmp_path / "ens")
    again = load(tmp_path / "ens")
    assert [m["name"] for m in again.meta["members"]] == [m["name"] for m in ens.meta["members"]]
    assert np.allclose(again.predict_proba(dev_texts[:20]), ens.predict_proba(dev_texts[:20]))
    every = TextClassifier.ensemble(members, dev=(dev_texts, dev_labels), prune=0.0, cost_share=1.0)
    assert len(every.members) == 3 and "pruned" not in every.meta
    assert set(every.meta["cost"]["members"]) == {"char_svm", "word_nb", "majority"}
    assert sum(m["share"] for m in every.meta["cost"]["members"].values()) == pytest.approx(1.0, abs=1e-3)


def test_a_member_that_costs_most_of_the_time_and_adds_nothing_is_dropped():
    from cls_app.models.ensemble import costly_member

    rng = np.random.default_rng(3)
    n, k = 400, 2
    y = rng.integers(0, k, size=n)
    good = np.full((n, k), 0.2)
    good[np.arange(n), y] = 0.8
    flip = rng.random(n) < 0.2
    good[flip] = good[flip][:, ::-1]
    copy = np.clip(good + rng.normal(0, 0.01, size=good.shape), 0.01, None)  # says what `good` says
    settings = EnsembleSettings()
    found = costly_member([log_probs(good), log_probs(copy)], y, [0.1, 0.9], settings, "macro_f1")
    assert found is not None and found["member"] == 1 and found["cost_share"] == pytest.approx(0.9)
    assert costly_member([log_probs(good), log_probs(copy)], y, [0.5, 0.5], settings, "macro_f1") is None  # half
    # a costly member the others cannot do without (here: the only good one) is kept
    noise = _probs(rng, n, k)
    assert costly_member([log_probs(noise), log_probs(good)], y, [0.1, 0.9], settings, "macro_f1") is None
    assert costly_member([log_probs(good), log_probs(copy)], y, [0.1, 0.9], EnsembleSettings(cost_share=1.0),
                         "macro_f1") is None


# --------------------------------------------------------------------------- folders and commands


def test_ensemble_folder_predicts_the_fitted_combination_everywhere(tmp_path, capsys):
    import pandas as pd

    from cls_app.models import load
    from cls_app.models.folders import model_size_bytes

    files = noisy_files(tmp_path)
    base, ens = tmp_path / "base", tmp_path / "ens"
    rc, out, err = run_main(capsys, "-q", "baseline", "--train", str(files["train"]), "--dev", str(files["dev"]),
                            "--out", str(base), "--models", "char_svm", "char_nb", "word_nb")
    assert rc == 0, err
    rc, out, err = run_main(capsys, "-q", "ensemble", "--models", str(base), "--dev", str(files["dev"]),
                            "--out", str(ens), "--prune", "0")
    assert rc == 0, err
    assert "fitted on 150 dev rows" in out and "cross-fitted" in out and "pruned" not in out
    meta = json.loads((ens / "ensemble.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "ensemble" and meta["format_version"] == 1 and meta["combine"] == "logprob"
    assert meta["task"] and sorted(meta["labels"]) == ["正面", "负面"] and meta["fit"]["fitted"]
    assert [m["path"] for m in meta["members"]] == ["../base/char_nb", "../base/char_svm", "../base/word_nb"]
    assert sum(m["weight"] for m in meta["members"]) == pytest.approx(1.0, abs=1e-5)
    assert meta["fit"]["rows"] == 150 and "ensemble_cross_fitted" in meta["dev"]

    # the folder's probabilities are exactly the documented combination of the members'
    texts = pd.read_csv(files["test"])["text"].tolist()
    got = load(ens).predict_proba(texts)
    logps = []
    for m in meta["members"]:
        p = load(ens / m["path"])
        logps.append(log_probs(p.predict_proba(texts)[:, [p.labels.index(x) for x in meta["labels"]]]))
    want = combine(logps, [m["weight"] for m in meta["members"]], [m["temperature"] for m in meta["members"]])
    want = calibrate(want, meta["calibration"]["temperature"])  # the ensemble's own calibration, fitted on dev
    assert np.allclose(got, want) and np.allclose(got.sum(axis=1), 1.0)
    decided = load(ens).task.decide(want, meta["labels"])  # argmax, or with the offsets fitted for macro-F1
    empty = load(ens).predict_proba([None, texts[0]])
    assert np.isnan(empty[0]).all() and not np.isnan(empty[1]).any()

    # evaluate, compare and predict take it like any model folder
    rc, out, err = run_main(capsys, "-q", "evaluate", "--model", str(ens), "--data", str(files["test"]),
                            "--out", str(tmp_path / "ev"))
    assert rc == 0, err
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    truth = pd.read_csv(files["test"])["label"].tolist()
    assert report["accuracy"] == pytest.approx(np.mean([meta["labels"][i] == t for i, t in
                                                        zip(decided, truth, strict=True)]))
    rc, out, err = run_main(capsys, "-q", "compare", "--models", str(base), str(ens), "--data", str(files["test"]),
                            "--out", str(tmp_path / "cmp"))
    assert rc == 0, err
    rows = {m["name"]: m for m in json.loads((tmp_path / "cmp" / "comparison.json").read_text())["models"]}
    assert rows["ens"]["kind"] == "ensemble"
    assert rows["ens"]["size_bytes"] == model_size_bytes(ens) > sum(model_size_bytes(base / n) for n in
                                                                    ("char_nb", "char_svm", "word_nb"))
    rc, out, err = run_main(capsys, "-q", "predict", "--model", str(ens), "--text", texts[0])
    assert rc == 0 and out.split("\t")[0] == meta["labels"][int(decided[0])]
    # explain: the members' character scores, weighted as the ensemble weighs them
    rc, out, err = run_main(capsys, "-q", "explain", "--model", str(ens), "--text", texts[0], "--output",
                            str(tmp_path / "ex.json"))
    assert rc == 0, err
    (ex,) = json.loads((tmp_path / "ex.json").read_text(encoding="utf-8"))
    assert ex["label"] == meta["labels"][int(decided[0])] and ex["method"] == "ensemble_weighted"
    assert len(ex["char_scores"]) == len(texts[0]) and any(ex["char_scores"])
    members = [m["path"] for m in ex["details"]["members"]]
    assert len(members) == len(meta["members"])

    # --copy: a self-contained folder that survives moving and the members' removal
    rc, out, err = run_main(capsys, "-q", "ensemble", "--models", str(base), "--dev", str(files["dev"]),
                            "--out", str(tmp_path / "ens_copy"), "--copy", "--combine", "prob")
    assert rc == 0, err
    moved = tmp_path / "elsewhere" / "ens_copy"
    moved.parent.mkdir()
    shutil.move(tmp_path / "ens_copy", moved)
    shutil.rmtree(base)
    assert load(moved).predict_proba(texts).shape == (len(texts), 2)
    # ... while the referencing one now says what is missing
    rc, out, err = run_main(capsys, "-q", "evaluate", "--model", str(ens), "--data", str(files["test"]))
    assert rc == 2 and "member folder" in err and "not found" in err and "Traceback" not in err


def test_ensemble_refuses_bad_members_and_files(tmp_path, capsys):
    files = noisy_files(tmp_path)
    base = tmp_path / "base"
    assert run_main(capsys, "-q", "baseline", "--train", str(files["train"]), "--out", str(base),
                    "--models", "char_nb")[0] == 0
    three = write_csv(tmp_path / "three.csv", *[x * 10 for x in (["好", "差", "一般"], ["a", "b", "c"])])
    assert run_main(capsys, "-q", "baseline", "--train", str(three), "--dev", str(three), "--out",
                    str(tmp_path / "other"), "--models", "char_nb")[0] == 0
    rc, _, err = run_main(capsys, "-q", "ensemble", "--models", str(base / "char_nb"), str(tmp_path / "other"),
                          "--dev", str(files["dev"]), "--out", str(tmp_path / "ens"))
    assert rc == 2 and "same classes" in err and not (tmp_path / "ens").exists()
    rc, _, err = run_main(capsys, "-q", "ensemble", "--models", str(base / "char_nb"), "--dev", str(files["dev"]),
                          "--out", str(base / "char_nb"))
    assert rc == 2 and "one of the members" in err
    rc, _, err = run_main(capsys, "-q", "ensemble", "--models", str(base), "--dev", str(three),
                          "--out", str(tmp_path / "ens"))
    assert rc == 2 and "not known to the members" in err
    ens = tmp_path / "ens"
    assert run_main(capsys, "-q", "ensemble", "--models", str(base), "--dev", str(files["dev"]), "--out",
                    str(ens))[0] == 0
    meta = json.loads((ens / "ensemble.json").read_text(encoding="utf-8"))
    for broken, needle in ((dict(meta, combine="max"), "'combine'"), (dict(meta, format_version=9), "format 9"),
                           (dict(meta, members=[dict(meta["members"][0], weight=-1)]), "weight")):
        (ens / "ensemble.json").write_text(json.dumps(broken), encoding="utf-8")
        rc, _, err = run_main(capsys, "-q", "predict", "--model", str(ens), "--text", "好")
        assert rc == 2 and needle in err and err.count("\n") == 1, err
