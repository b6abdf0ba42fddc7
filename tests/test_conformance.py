"""Every model kind behind the one interface, checked the same way (in the manner of scikit-learn's
``check_estimator``): the checks of :mod:`cls_app.testing` for every registered kind, chosen from what each
kind declares; a kind added later is checked without being listed here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cls_app import TextClassifier, UserError, load
from cls_app.models.base import all_kinds
from cls_app.testing import KindUnderTest, kind_checks, run_check

KINDS = sorted(all_kinds())
CASES = [(kind, check) for kind in KINDS for check in kind_checks(kind)]


@pytest.fixture(scope="module")
def under_test() -> dict[str, KindUnderTest]:
    """One :class:`KindUnderTest` per kind: its toy model is fitted once and shared by its checks."""
    return {kind: KindUnderTest(kind, dict(all_kinds()[kind].quick_settings)) for kind in KINDS}


def test_the_built_in_kinds_are_all_registered() -> None:
    assert {"bert", "char_lr", "char_svm", "char_nb", "word_lr", "word_svm", "word_nb", "majority", "fasttext",
            "textcnn", "ensemble"} <= set(KINDS)


@pytest.mark.parametrize(("kind", "check"), CASES, ids=[f"{k}-{c}" for k, c in CASES])
def test_kind(under_test, kind, check) -> None:
    run_check(under_test[kind], check)


FITTABLE = [k for k in KINDS if not all_kinds()[k].combines]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FITTABLE), st.integers(0, 2**32 - 1))
def test_random_small_sets_fit_or_are_refused(under_test, kind, seed) -> None:
    """Random small labeled sets (cls_app.testing.random_set: duplicates, texts with two labels, 2-5 labels, 4-60
    rows, dev missing classes): every kind (a tiny BERT among them) fits, with finite outputs that survive a save
    and load, or refuses with one UserError line. bench/degenerate.py runs thousands of these."""
    import random

    from cls_app.testing import fits_or_refuses, random_set

    texts, labels, dev = random_set(random.Random(seed))
    fits_or_refuses(under_test[kind], texts, labels, dev, f"random set {seed}", twice=False)


def test_unknown_kinds_and_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown model kind 'rf'.*char_svm"):
        TextClassifier(kind="rf")
    with pytest.raises(UserError, match="unknown model kind 'char_sv' \\(did you mean char_svm"):
        TextClassifier(kind="char_sv")
    with pytest.raises(UserError, match="needs a kind"):
        TextClassifier()
    with pytest.raises(UserError, match="a bert model has no setting 'leyers'; did you mean layers"):
        TextClassifier(kind="bert", leyers=2)
    with pytest.raises(UserError, match="a char_nb model has no setting 'C'"):
        TextClassifier(kind="char_nb", C=2)
    with pytest.raises(UserError, match="a textcnn model setting epochs must be int, got '3'"):
        TextClassifier(kind="textcnn", epochs="3")
    with pytest.raises(UserError, match="a ensemble model has no setting 'shrink'; did you mean shrink_rows"):
        TextClassifier.ensemble([], dev=([], []), shrink=3)


def test_tfidf_kinds_take_their_hyperparameters_and_record_them(tmp_path) -> None:
    texts, labels = KindUnderTest("char_svm", {}).train
    svm = TextClassifier(kind="char_svm", C=0.3, ngram_range=(1, 3), min_df=1, sublinear_tf=False)
    params = svm.get_params()
    assert params["C"] == 0.3 and params["ngram_range"] == (1, 3) and params["sublinear_tf"] is False
    svm.fit(texts, labels)
    assert svm.estimator[-1].C == 0.3 and svm.estimator[0].ngram_range == (1, 3)
    again = load(svm.save(tmp_path / "svm"))
    assert again.get_params()["C"] == 0.3 and again.get_params()["ngram_range"] == (1, 3)
    assert TextClassifier(kind="word_nb").get_params()["ngram_range"] == (1, 1)  # the word kinds' own default
    with pytest.raises(UserError, match="ngram_range"):
        TextClassifier(kind="char_svm", ngram_range=(2, 1)).fit(texts, labels)


def test_hierarchical_label_paths_from_lists() -> None:
    texts = ["球门射踢" * 2, "篮筐投扣" * 2, "股涨跌盘" * 2, "基金净值" * 2] * 10
    paths = [["体育##足球"], ["体育##篮球"], ["财经##股票"], ["财经##基金"]] * 10
    model = TextClassifier(kind="char_lr").fit(texts, paths, dev=(texts, paths), task="hierarchical")
    assert "体育" in model.labels and "体育##足球" in model.labels
    (pred,) = model.predict(["球门射踢球门"])
    assert set(pred.labels) == {"体育", "体育##足球"}


def test_a_kind_refuses_a_task_it_does_not_declare() -> None:
    texts = ["球门射踢", "股涨跌盘"] * 10
    sets = [["体育"], ["财经", "体育"]] * 10
    with pytest.raises(UserError, match="the textcnn kind fits single-label data, not multi-label; kinds that do"):
        TextClassifier(kind="textcnn").fit(texts, sets)


def test_the_api_and_the_cli_load_the_same_model(under_test, tmp_path, capsys) -> None:
    """A folder holding best.json: cls_app.load and `run.py predict` answer with the recommended model."""
    from .conftest import run_main

    out = tmp_path / "run"
    under_test["bert"].fitted().save(out)
    under_test["char_svm"].fitted().save(out / "baselines" / "char_svm")
    (out / "best.json").write_text(json.dumps({"path": "baselines/char_svm"}), encoding="utf-8")
    text = under_test["bert"].test[0][0]
    rc, stdout, _ = run_main(capsys, "-q", "predict", "--model", str(out), "--text", text)
    label, prob = stdout.split("\t")[:2]
    (api,) = load(out).predict([text])
    assert rc == 0 and load(out).kind == "char_svm" and load(out, follow=False).kind == "bert"
    assert (api.label, f"{api.prob:.4f}") == (label, prob)
    probs = load(out).predict_proba([text])
    assert np.isclose(probs.max(), float(prob), atol=1e-4)
