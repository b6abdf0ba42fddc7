"""Abstaining: the rule fitted on dev, the out-of-domain score of every kind, and every output that shows it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app import TextClassifier, load
from cls_app.evaluation.selective import auroc, risk_coverage, selective_accuracy
from cls_app.tasks.abstain import (
    LOW_CONFIDENCE,
    OUT_OF_DOMAIN,
    AbstainSettings,
    DevEvidence,
    RejectRule,
    coverage_threshold,
    fit_rule,
)

from .conftest import copy_model, run_main, toy_texts, write_csv

JUNK = ["hello world how are you", "asdkjh qwe zxc", "1234567890", "😀😀😀 🎉🎉", "!!!???...",
        "The quick brown fox jumps over the lazy dog", "Привет как дела", "こんにちは世界"]


def evidence(n: int = 400, seed: int = 0) -> DevEvidence:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, n)
    correct = rng.uniform(0, 1, n) < conf  # more confident, more often right
    return DevEvidence(conf, rng.integers(0, 3, n), correct, rng.normal(0, 1, n))


# --------------------------------------------------------------------------- the rule


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200), st.floats(0.05, 1.0))
@settings(max_examples=60, deadline=None)
def test_coverage_threshold_answers_at_least_the_target_share(values, coverage):
    conf = np.asarray(values)
    t = coverage_threshold(conf, np.ones(len(conf), dtype=bool), coverage)
    assert (conf >= t).mean() >= coverage - 1e-9
    if len(set(values)) == len(values):  # no ties: the fewest rows that reach the coverage
        assert (conf >= t).sum() == int(np.ceil(coverage * len(conf) - 1e-9))


def test_auto_rule_answers_the_target_coverage_of_dev_and_says_why():
    ev = evidence()
    rule = fit_rule(ev, AbstainSettings(target_coverage=0.85), 3)
    got = rule.apply(ev.confidence, ev.pred, ev.ood)
    assert abs((~got.abstained).mean() - 0.85) <= 1 / len(ev.pred) + 1e-9
    assert rule.dev["coverage"] == pytest.approx((~got.abstained).mean(), abs=1e-4)
    reasons = {r for r in got.reason if r}
    assert reasons == {OUT_OF_DOMAIN, LOW_CONFIDENCE}
    far = ev.ood > rule.ood_threshold
    assert all(got.reason[i] == OUT_OF_DOMAIN for i in np.flatnonzero(far))
    assert 0.02 <= far.mean() <= 0.04  # the 97th percentile of dev


def test_precision_rule_reaches_the_precision_on_dev():
    ev = evidence(2000)
    rule = fit_rule(ev, AbstainSettings(target_precision=0.9), 3)
    assert rule.dev["accuracy_answered"] >= 0.9
    assert len(set(rule.confidence)) > 1  # a threshold per class (each has hundreds of dev rows)
    looser = fit_rule(ev, AbstainSettings(target_precision=0.8), 3)
    assert looser.dev["coverage"] > rule.dev["coverage"]


def test_off_answers_everything_and_a_number_is_a_fixed_threshold():
    ev = evidence()
    off = fit_rule(ev, AbstainSettings(reject="off"), 3)
    assert not off.apply(ev.confidence, ev.pred, ev.ood).abstained.any()
    fixed = fit_rule(ev, AbstainSettings(reject="0.7"), 3)
    got = fixed.apply(ev.confidence, ev.pred, np.zeros(len(ev.pred)))
    assert np.array_equal(got.abstained, ev.confidence < 0.7)
    assert RejectRule.from_json(json.loads(json.dumps(fixed.to_json()))) == fixed


def test_empty_rows_are_never_abstained():
    rule = fit_rule(evidence(), AbstainSettings(), 3)
    got = rule.apply(np.array([0.0, 0.99]), np.array([-1, 0]), np.array([np.nan, 100.0]))
    assert got.abstained.tolist() == [False, True] and got.reason == [None, OUT_OF_DOMAIN]


@pytest.mark.parametrize("values, message", [
    ({"reject": "maybe"}, "--reject must be auto, off or a probability"),
    ({"reject": "1.5"}, "must be in [0, 1]"),
    ({"target_coverage": 0.0}, "--target-coverage must be in (0, 1]"),
    ({"target_coverage": 0.9, "target_precision": 0.9}, "not both"),
    ({"reject": "off", "target_coverage": 0.9}, "--reject off answers every text"),
])
def test_bad_settings_name_the_flag(values, message):
    from cls_app.errors import UserError

    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        AbstainSettings(**values).check()


def test_risk_coverage_aurc_and_auroc():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, False, False])
    cov, risk = risk_coverage(conf, correct)
    assert cov.tolist() == [0.25, 0.5, 0.75, 1.0] and risk.tolist() == [0.0, 0.0, 1 / 3, 0.5]
    assert selective_accuracy(conf, correct, 0.5) == 1.0
    assert auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert auroc(np.array([0.3, 0.4]), np.array([0.1, 0.2])) == 0.0


# --------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def char_lr(tmp_path_factory) -> Path:
    train, dev = toy_texts(300, 1), toy_texts(100, 2)
    model = TextClassifier(kind="char_lr").fit(*train, dev=dev)
    return model.save(tmp_path_factory.mktemp("abstain") / "char_lr")


def test_tfidf_abstains_on_junk_and_answers_its_own_texts(char_lr):
    model = load(char_lr)
    assert (char_lr / "ood.safetensors").is_file() and (char_lr / "ood.json").is_file()
    inside = model.predict(toy_texts(100, 7)[0])
    junk = model.predict(JUNK)
    assert sum(p.abstained for p in inside) <= 15
    assert all(p.abstained and p.reason == OUT_OF_DOMAIN for p in junk)
    assert all(p.label in model.labels for p in junk)  # the best guess is kept
    scores = model.ood_scores([*toy_texts(20, 8)[0], *JUNK])
    assert scores[20:].min() > scores[:20].max()


def test_load_options_override_the_folders_rule(char_lr):
    off = load(char_lr, abstain=AbstainSettings(reject="off"))
    assert not any(p.abstained for p in off.predict(JUNK))
    assert load(char_lr).abstainer.rule.mode == "auto"


def test_old_folders_predict_and_explain_how_to_abstain(char_lr, tmp_path, capsys):
    old = copy_model(char_lr, tmp_path)
    for name in ("ood.json", "ood.safetensors"):
        (old / name).unlink()
    (pred,) = load(old).predict(["hello world"])
    assert not pred.abstained and pred.ood_score is None
    code, _, err = run_main(capsys, "predict", "--model", str(old), "--text", "x", "--target-coverage", "0.9")
    assert code == 2 and "run.py abstain --model DIR --dev FILE" in err
    dev = write_csv(tmp_path / "dev.csv", *toy_texts(100, 2))
    code, out, _ = run_main(capsys, "abstain", "--model", str(old), "--dev", str(dev))
    assert code == 0 and "ood score centroid" in out
    assert load(old).predict(["hello world"])[0].abstained


def test_predict_file_keeps_every_row_with_abstention_columns(char_lr, tmp_path, capsys):
    import pandas as pd

    texts = [*toy_texts(5, 3)[0], *JUNK, ""]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    code, out, _ = run_main(capsys, "predict", "--model", str(char_lr), "--input", str(tmp_path / "in.csv"),
                            "--output", str(tmp_path / "out.csv"))
    assert code == 0 and f"abstained on {len(JUNK)}" in out
    frame = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert len(frame) == len(texts)
    assert list(frame.columns[-3:]) == ["abstained", "reason", "ood_score"]
    assert frame["abstained"].tolist()[:-1] == ["false"] * 5 + ["true"] * len(JUNK)
    assert set(frame["reason"][5:-1]) == {OUT_OF_DOMAIN}
    assert frame.iloc[-1]["pred_label"] == "" and frame.iloc[-1]["abstained"] == ""  # the empty text


def test_evaluate_writes_the_risk_coverage_curve_and_ood_histogram(char_lr, tmp_path, capsys):
    test = write_csv(tmp_path / "test.csv", *toy_texts(80, 5))
    code, out, _ = run_main(capsys, "evaluate", "--model", str(char_lr), "--data", str(test), "--out",
                            str(tmp_path / "ev"))
    assert code == 0 and "AURC" in out and "on the 90% most confident" in out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    sel = metrics["selective"]
    assert 0 <= sel["aurc"] <= 1 and sel["selective_accuracy_at_90"] >= sel["accuracy"] - 1e-9
    assert (tmp_path / "ev" / "risk_coverage.png").stat().st_size > 1000
    assert (tmp_path / "ev" / "ood_histogram.png").stat().st_size > 1000
    html = (tmp_path / "ev" / "report.html").read_text(encoding="utf-8")
    assert "abstaining" in html and "risk-coverage" in html


def test_bert_scores_ood_from_its_cls_vector_in_the_same_pass(toy_bert):
    model = load(toy_bert)
    assert model.abstainer is not None and model.abstainer.scorer.detector.method == "mahalanobis"
    outputs = model.score([*toy_texts(30, 9)[0], *JUNK])
    assert np.isfinite(outputs.ood).all()
    assert np.median(outputs.ood[30:]) > np.median(outputs.ood[:30])
    assert np.allclose(outputs.probs, model.predict_proba([*toy_texts(30, 9)[0], *JUNK]), atol=1e-6)


def test_ensemble_combines_its_members_ood_scores(char_lr, tmp_path):
    train, dev = toy_texts(300, 1), toy_texts(100, 2)
    nb = TextClassifier(kind="char_nb").fit(*train, dev=dev)
    ensemble = TextClassifier.ensemble([load(char_lr), nb], dev=dev)
    assert ensemble.abstainer.scorer.members
    saved = load(ensemble.save(tmp_path / "ens"))
    junk = saved.predict(JUNK)
    assert all(p.abstained for p in junk)
    assert np.allclose(saved.ood_scores(JUNK), ensemble.ood_scores(JUNK))


def test_label_sets_abstain_with_an_empty_set():
    texts, labels = toy_texts(200, 1)
    sets = [[lab] if i % 3 else [lab, "多"] for i, lab in enumerate(labels)]
    dev_texts, dev_labels = toy_texts(80, 2)
    dev_sets = [[lab] if i % 3 else [lab, "多"] for i, lab in enumerate(dev_labels)]
    model = TextClassifier(kind="char_lr").fit(texts, sets, dev=(dev_texts, dev_sets))
    junk = model.predict(JUNK)
    assert all(p.abstained and p.labels == () for p in junk)
    assert sum(p.abstained for p in model.predict(toy_texts(50, 3)[0])) <= 8


def test_service_answers_with_the_abstention_and_takes_another_rule(char_lr):
    from fastapi.testclient import TestClient

    from cls_app.service.app import create_app
    from cls_app.service.server import load_model
    from cls_app.service.settings import ServeSettings

    for serve, expected in ((ServeSettings(max_wait_ms=0), True), (ServeSettings(max_wait_ms=0, reject="off"), False)):
        app = create_app(load_model(char_lr, serve), serve)
        with TestClient(app) as client:
            body = client.post("/predict", json={"texts": ["hello world how are you", toy_texts(1, 4)[0][0]]}).json()
            junk, known = body["predictions"]
            assert junk["abstained"] is expected and known["abstained"] is False
            assert junk["reason"] == (OUT_OF_DOMAIN if expected else None) and junk["ood_score"] > 1
            assert client.get("/info").json()["model_settings"]["abstain"]["reject"] == ("auto" if expected else "off")
    assert ServeSettings(target_coverage=2.0).check() == ["--target-coverage must be in (0, 1], got 2.0"]


def reference_language(d, text: str) -> float:
    """The character bigram surprisal written out per character (the definition the vectorised one keeps)."""
    import math

    from cls_app.models.ood import START

    codes = [ord(c) for c in text]
    denom = d.total + len(d.unigrams) + 1
    nll = 0.0
    for a, b in zip([START, *codes], codes, strict=False):
        p = (d.unigrams.get(b, 0) + 1) / denom
        h = d.history.get(a)
        if h is not None:
            lam = h[0] / (h[0] + h[1])
            p = lam * d.bigrams.get((a << 21) | b, 0) / h[0] + (1.0 - lam) * p
        nll -= math.log(p)
    return nll / max(1, len(codes))


_TEXTS = st.text(alphabet=st.sampled_from(list("体育财经股市中国队赢了ab1２ 。!😀\n")), max_size=12)


@given(st.lists(_TEXTS, min_size=1, max_size=8), st.lists(_TEXTS, min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_text_density_scores_every_character_as_the_definition_says(train, texts):
    from cls_app.models.ood import SCRIPT_BINS, TextDensity, composition_bins

    d = TextDensity.fit(train)
    texts = [*texts, "\ud800孤"]  # a lone surrogate is one code point, as ord() sees it
    np.testing.assert_allclose(d.language(texts), [reference_language(d, t) for t in texts], rtol=1e-12)
    counts = d.script_counts
    rates = -np.log((counts + 0.5) / (counts.sum(axis=1, keepdims=True) + 0.5 * SCRIPT_BINS))
    expected = [max(rates[s, b] for s, b in enumerate(composition_bins(t))) for t in texts]
    np.testing.assert_allclose(d.composition(texts), expected, rtol=1e-12)
    fitted = np.zeros((5, SCRIPT_BINS), dtype=np.int64)
    for t in train:
        for s, b in enumerate(composition_bins(t)):
            fitted[s, b] += 1
    np.testing.assert_array_equal(d.script_counts, fitted)
