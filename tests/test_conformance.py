"""Every model kind behind the one interface, checked the same way (in the manner of scikit-learn's
``check_estimator``): fit from in-memory lists, probabilities that are distributions over ``.labels``,
a save/load round trip that predicts identically, empty texts as NaN rows, bad input as a ``UserError``,
label sets and sentence pairs where the kind takes them."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from cls_app import LabelSetPrediction, Prediction, TextClassifier, UserError, load
from cls_app.models.base import KINDS, kind_class

from .conftest import toy_texts

TINY_BERT = {"layers": 1, "hidden": 32, "heads": 2, "min_freq": 1, "max_len": 32, "epochs": 4, "batch_size": 16,
             "lr": 3e-3, "seed": 0}
SETTINGS = {"bert": TINY_BERT, "textcnn": {"epochs": 3, "embed": 32, "filters": 32, "buckets": 5000},
            "fasttext": {"epoch": 10, "buckets": 20000, "dim": 16}}
BASELINES = ["char_lr", "char_svm", "char_nb", "word_lr", "word_svm", "word_nb", "majority"]
KINDS_UNDER_TEST = ["bert", *BASELINES, "fasttext", "textcnn", "ensemble"]
LABEL_SET_KINDS = ["bert", "char_lr", "char_svm", "char_nb", "word_lr", "word_svm", "word_nb"]
GROUPS = {"体育": "球赛跑跳泳冠", "财经": "股票基金涨跌", "科技": "手机电脑芯片"}


def make(kind: str) -> TextClassifier:
    return TextClassifier(kind=kind, **SETTINGS.get(kind, {}))


@pytest.fixture(scope="module")
def data() -> dict:
    return {"train": toy_texts(160, 1), "dev": toy_texts(40, 2), "test": toy_texts(40, 3)}


@pytest.fixture(scope="module")
def fitted(data) -> dict[str, TextClassifier]:
    """One fitted model of each kind (the ensemble: the BERT with two baselines, fitted on dev)."""
    models = {kind: make(kind).fit(*data["train"], dev=data["dev"]) for kind in KINDS_UNDER_TEST if kind != "ensemble"}
    models["ensemble"] = TextClassifier.ensemble([models["bert"], models["char_svm"], models["word_nb"]],
                                                 dev=data["dev"], min_fit_rows=10)
    return models


def test_every_registered_kind_is_checked() -> None:
    for kind in ("bert", "char_lr", "ensemble", "fasttext", "textcnn"):  # registers the built-ins
        kind_class(kind)
    assert set(KINDS) == set(KINDS_UNDER_TEST)


@pytest.mark.parametrize("kind", KINDS_UNDER_TEST)
def test_fits_from_lists_and_predicts_distributions(fitted, data, kind) -> None:
    model = fitted[kind]
    texts, gold = data["test"]
    assert model.kind == kind and model.labels == ["正面", "负面"] and model.task.name == "single-label"
    probs = model.predict_proba(texts)
    assert probs.shape == (len(texts), 2) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    preds = model.predict(texts, top_k=2)
    assert all(isinstance(p, Prediction) and len(p.top) == 2 for p in preds)
    assert [p.label for p in preds] == [model.labels[i] for i in probs.argmax(axis=1)]
    accuracy = np.mean([p.label == g for p, g in zip(preds, gold, strict=True)])
    assert accuracy == 0.5 if kind == "majority" else accuracy >= 0.9, accuracy
    assert model.predict_proba([]).shape == (0, 2)


@pytest.mark.parametrize("kind", KINDS_UNDER_TEST)
def test_save_and_load_predict_identically(fitted, data, kind, tmp_path) -> None:
    model = fitted[kind]
    texts = data["test"][0] + ["这个", "x" * 300]
    folder = model.save(tmp_path / kind)
    again = load(folder)
    assert type(again) is type(model) and again.kind == model.kind and again.labels == model.labels
    assert again.task == model.task and again.path == folder
    np.testing.assert_allclose(again.predict_proba(texts), model.predict_proba(texts), rtol=1e-5, atol=1e-6)
    assert [p.label for p in again.predict(texts)] == [p.label for p in model.predict(texts)]
    # the out-of-domain score too (a dev normalisation saved rounded to 6 places once made it inf / NaN here)
    np.testing.assert_allclose(again.ood_scores(texts), model.ood_scores(texts), rtol=1e-5, atol=1e-6)
    assert [p.abstained for p in again.predict(texts)] == [p.abstained for p in model.predict(texts)]


@pytest.mark.parametrize("kind", KINDS_UNDER_TEST)
def test_empty_texts_are_nan_rows_in_place(fitted, kind) -> None:
    probs = fitted[kind].predict_proba(["这个好棒", None, "  ", float("nan"), "这个太差"])
    assert np.isnan(probs[1:4]).all() and not np.isnan(probs[[0, 4]]).any()
    assert fitted[kind].predict(["", "这个好"])[0] == Prediction(None, None, ())


@pytest.mark.parametrize("kind", KINDS_UNDER_TEST)
def test_bad_input_is_a_user_error(fitted, data, kind) -> None:
    model = fitted[kind]
    with pytest.raises(UserError, match="single string"):
        model.predict_proba("这个好")
    with pytest.raises(UserError, match="sentence pairs|single texts"):
        model.predict_proba([("这个", "好")])
    if kind == "ensemble":
        return
    texts, labels = data["train"]
    for bad_texts, bad_labels, needle in (
        (texts[:3] + [""], labels[:4], "item 4: empty text"),
        (texts[:4], labels[:3], "4 texts but 3 labels"),
        (texts[:4], ["正面"] * 4, "single class"),
        ("这个好", labels[:1], "single string"),
        (texts[:4], [None, "a", "b", "a"], "item 1: the label"),
    ):
        with pytest.raises(UserError, match=needle):
            make(kind).fit(bad_texts, bad_labels)
    with pytest.raises(UserError, match="not fitted"):
        make(kind).predict_proba(["这个"])


def test_unknown_kinds_and_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown model kind 'rf'.*char_svm"):
        TextClassifier(kind="rf")
    with pytest.raises(UserError, match="needs a kind"):
        TextClassifier()
    with pytest.raises(UserError, match="unknown BERT setting.*leyers"):
        TextClassifier(kind="bert", leyers=2)
    with pytest.raises(UserError, match="unknown setting.*C"):
        TextClassifier(kind="char_svm", C=2)
    with pytest.raises(UserError, match="unknown ensemble setting"):
        TextClassifier.ensemble([], dev=([], []), shrink=3)


def _label_set_rows(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    texts, sets = [], []
    for _ in range(n):
        labels = rng.sample(sorted(GROUPS), rng.choice((1, 1, 2)))
        body = "".join(rng.choice(GROUPS[g]) for g in labels for _ in range(5))
        texts.append("".join(rng.sample(body, len(body))))
        sets.append(labels)
    return texts, sets


@pytest.mark.parametrize("kind", LABEL_SET_KINDS)
def test_label_sets_from_lists(kind, tmp_path) -> None:
    train, dev, test = _label_set_rows(200, 1), _label_set_rows(60, 2), _label_set_rows(40, 3)
    settings = {**TINY_BERT, "epochs": 12, "lr": 5e-3} if kind == "bert" else {}
    model = TextClassifier(kind=kind, **settings).fit(*train, dev=dev)
    assert model.task.name == "multi-label" and model.labels == sorted(GROUPS)
    probs = model.predict_proba(test[0])
    assert probs.shape == (40, 3) and ((probs >= 0) & (probs <= 1)).all()
    preds = model.predict(test[0])
    assert all(isinstance(p, LabelSetPrediction) for p in preds)
    right = np.mean([set(p.labels or ()) == set(g) for p, g in zip(preds, test[1], strict=True)])
    assert right >= 0.6, right
    again = load(model.save(tmp_path / kind))
    assert again.task == model.task and again.task.thresholds is not None
    np.testing.assert_allclose(again.predict_proba(test[0]), probs, rtol=1e-5, atol=1e-6)
    config = tmp_path / kind / ("config.json" if kind == "bert" else "baseline.json")
    assert "multi-label" in config.read_text(encoding="utf-8")


def test_hierarchical_label_paths_from_lists() -> None:
    texts = ["球门射踢" * 2, "篮筐投扣" * 2, "股涨跌盘" * 2, "基金净值" * 2] * 10
    paths = [["体育##足球"], ["体育##篮球"], ["财经##股票"], ["财经##基金"]] * 10
    model = TextClassifier(kind="char_lr").fit(texts, paths, dev=(texts, paths), task="hierarchical")
    assert "体育" in model.labels and "体育##足球" in model.labels
    (pred,) = model.predict(["球门射踢球门"])
    assert set(pred.labels) == {"体育", "体育##足球"}


@pytest.mark.parametrize("kind", ["bert", "char_svm"])
def test_sentence_pairs_from_lists(kind, tmp_path) -> None:
    rng = random.Random(0)
    pairs, labels = [], []
    for i in range(160):
        a = "".join(rng.sample("球赛跑跳泳冠", 4))
        b = "".join(rng.sample("球赛跑跳泳冠" if i % 2 else "股票基金涨跌", 4))
        pairs.append((a, b))
        labels.append("same" if i % 2 else "diff")
    settings = {**TINY_BERT, "epochs": 8} if kind == "bert" else {}
    model = TextClassifier(kind=kind, **settings).fit(pairs, labels)
    assert model.pairs and model.text_pair_col == "text_b"
    with pytest.raises(UserError, match="sentence pairs"):
        model.predict(["球赛"])
    again = load(model.save(tmp_path / kind))
    assert again.pairs
    np.testing.assert_allclose(again.predict_proba(pairs[:20]), model.predict_proba(pairs[:20]), rtol=1e-5,
                               atol=1e-6)
    accuracy = np.mean([p.label == g for p, g in zip(model.predict(pairs), labels, strict=True)])
    assert accuracy >= 0.9


def test_the_api_and_the_cli_load_the_same_model(fitted, data, tmp_path, capsys) -> None:
    """A folder holding best.json: cls_app.load and `run.py predict` answer with the recommended model."""
    from .conftest import run_main

    out = tmp_path / "run"
    fitted["bert"].save(out)
    fitted["char_svm"].save(out / "baselines" / "char_svm")
    (out / "best.json").write_text(json.dumps({"path": "baselines/char_svm"}), encoding="utf-8")
    text = data["test"][0][0]
    rc, stdout, _ = run_main(capsys, "-q", "predict", "--model", str(out), "--text", text)
    label, prob = stdout.split("\t")[:2]
    (api,) = load(out).predict([text])
    assert rc == 0 and load(out).kind == "char_svm" and load(out, follow=False).kind == "bert"
    assert (api.label, f"{api.prob:.4f}") == (label, prob)
