"""Classical baselines: training, saving/loading (trusted types only; format-1 skops folders too), jieba words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cls_app import TextClassifier
from cls_app.baselines.storage import SKOPS_FILE, STATE_FILE, load_baseline, read_meta
from cls_app.errors import UserError
from cls_app.io.records import LabeledData
from cls_app.models import load
from cls_app.models.folders import model_size_bytes, train_seconds
from cls_app.models.tfidf import BaselineClassifier
from cls_app.tasks import SingleLabel

from .conftest import toy_texts

LABELS = ["正面", "负面"]
BASELINE_NAMES = ["char_lr", "char_svm", "char_nb", "word_lr", "word_svm", "word_nb", "majority"]


def train_baseline(name: str, train: LabeledData, out: Path, test: LabeledData | None = None) -> dict:
    """Fit the baseline ``name`` on records in memory, record its test scores, save it; return baseline.json."""
    model = TextClassifier(kind=name).fit_records(train, None, SingleLabel())
    if test is not None:
        y = model.task.encode(test, model.labels)
        model.record("test", model.task.metrics(y, model.predict_proba(test.texts), model.labels))
    model.save(out)
    return model.meta


def _data(n: int, seed: int) -> LabeledData:
    return LabeledData(*toy_texts(n, seed), source=f"toy{seed}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Every baseline trained once on the toy task (about a second in all)."""
    root = tmp_path_factory.mktemp("baselines")
    train, test = _data(120, 1), _data(40, 2)
    # an uneven train set so the majority class is known
    train = LabeledData(train.texts + train.texts[:10:2], train.labels + train.labels[:10:2], "toy")
    metas = {name: train_baseline(name, train, root / name, test=test) for name in BASELINE_NAMES}
    return {"root": root, "test": test, "metas": metas}


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_each_baseline_trains_saves_and_predicts(trained, name) -> None:
    folder = trained["root"] / name
    meta = json.loads((folder / "baseline.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "baseline" and meta["labels"] == LABELS and meta["name"] == name
    assert meta["train_seconds"] >= 0 and train_seconds(folder) == meta["train_seconds"]
    assert model_size_bytes(folder) > 0

    predictor = load(folder)
    assert isinstance(predictor, BaselineClassifier) and predictor.labels == LABELS and predictor.kind == name
    test = trained["test"]
    proba = predictor.predict_proba(test.texts)
    assert proba.shape == (len(test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    pred = proba.argmax(axis=1)
    # the probability argmax is the estimator's own prediction (incl. LinearSVC's softmax)
    assert (pred == predictor.estimator.predict(test.texts)).all()
    accuracy = np.mean([LABELS[i] == y for i, y in zip(pred, test.labels, strict=True)])
    assert accuracy == pytest.approx(meta["test"]["accuracy"])
    if name == "majority":
        assert (pred == 0).all()  # 正面 is the more frequent training class
    else:
        assert accuracy >= 0.9
    assert predictor.predict_proba([]).shape == (0, 2)


def test_jieba_words_are_single_features(tmp_path) -> None:
    texts = ["我在北京大学读书", "北京大学的图书馆", "今天股市大涨", "股市行情很好"]
    data = LabeledData(texts, ["教育", "教育", "财经", "财经"], "words")
    train_baseline("word_svm", data, tmp_path / "w")
    train_baseline("char_svm", data, tmp_path / "c")
    word_vocab = load_baseline(tmp_path / "w")[0].named_steps["tfidf"].vocabulary_
    char_vocab = load_baseline(tmp_path / "c")[0].named_steps["tfidf"].vocabulary_
    assert "北京大学" in word_vocab and "股市" in word_vocab
    assert "北京大学" not in char_vocab and "北京" in char_vocab and "北" in char_vocab


def test_multiclass_label_order(tmp_path) -> None:
    """Columns follow the sorted label list, in memory and after a save/load round trip."""
    texts = ["足球比赛", "篮球比赛", "股票上涨", "基金收益", "电影上映", "明星演唱会"] * 3
    labels = ["体育", "体育", "财经", "财经", "娱乐", "娱乐"] * 3
    fitted = TextClassifier(kind="char_svm").fit(texts, labels)
    fitted.save(tmp_path / "m")
    p = load(tmp_path / "m")
    assert p.labels == fitted.labels == ["体育", "娱乐", "财经"]
    proba = p.predict_proba(["足球比赛", "基金收益", "明星演唱会"])
    assert proba.shape == (3, 3) and np.array_equal(proba, fitted.predict_proba(["足球比赛", "基金收益", "明星演唱会"]))
    assert [p.labels[i] for i in proba.argmax(axis=1)] == ["体育", "财经", "娱乐"]


def test_untrusted_content_is_refused(tmp_path, trained) -> None:
    import shutil

    folder = tmp_path / "evil"
    shutil.copytree(trained["root"] / "char_nb", folder)
    tree = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    # a class that is not on the list (here one that would run a function): refused before anything is built
    (folder / STATE_FILE).write_text(json.dumps({"$object": "sklearn.preprocessing._function_transformer."
                                                 "FunctionTransformer", "state": {"$dict": {"func": None}}}),
                                     encoding="utf-8")
    with pytest.raises(UserError, match="does not trust"):
        load(folder)
    (folder / STATE_FILE).write_text(json.dumps({**tree, "state": {"$dict": {"steps": [{"$tuple": [
        "x", {"$name": "os.system"}]}]}}}), encoding="utf-8")
    with pytest.raises(UserError, match="does not trust"):
        load(folder)
    # a pickle file under the arrays' name is not loaded either
    (folder / STATE_FILE).write_text(json.dumps(tree), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00.")
    with pytest.raises(UserError, match="cannot read"):
        load(folder)


def test_skops_folders_of_format_1_still_load_and_refuse_untrusted_types(tmp_path, trained) -> None:
    """Folders written before model.json hold model.skops (baseline.json format 1): they load through skops,
    trusted types only."""
    import os
    import shutil
    import zipfile

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    new = load(trained["root"] / "word_svm")
    folder = tmp_path / "old_word_svm"
    shutil.copytree(trained["root"] / "word_svm", folder)
    for name in ("model.json", "model.safetensors"):
        (folder / name).unlink()
    sio.dump(new.estimator, folder / SKOPS_FILE, compression=zipfile.ZIP_DEFLATED)
    meta = {**read_meta(folder), "format_version": 1}
    (folder / "baseline.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    texts, _ = toy_texts(20, seed=9)
    np.testing.assert_array_equal(load(folder).predict_proba(texts), new.predict_proba(texts))
    assert {p.name for p in __import__("cls_app").models.model_files(folder)} >= {"baseline.json", SKOPS_FILE}

    # a vectorizer named by its module before the package split (cls_app.tfidf) still loads
    with zipfile.ZipFile(folder / SKOPS_FILE) as zin:
        items = {name: zin.read(name) for name in zin.namelist()}
    schema = items["schema.json"].decode()
    assert '"cls_app.baselines.tfidf"' in schema
    items["schema.json"] = schema.replace('"cls_app.baselines.tfidf"', '"cls_app.tfidf"').encode()
    with zipfile.ZipFile(folder / SKOPS_FILE, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in items.items():
            zout.writestr(name, data)
    np.testing.assert_array_equal(load(folder).predict_proba(texts), new.predict_proba(texts))

    sio.dump(FunctionTransformer(os.getcwd), folder / SKOPS_FILE)
    with pytest.raises(UserError, match="does not trust"):
        load(folder)
    (folder / SKOPS_FILE).write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00.")
    with pytest.raises(UserError, match="cannot read"):
        load(folder)


def test_folder_errors_are_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="not found"):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a model folder"):
        load(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "baseline.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="not valid JSON"):
        load(bad)
    (bad / "baseline.json").write_text(json.dumps({"kind": "baseline", "format_version": 2,
                                                    "labels": ["a", "b"]}), encoding="utf-8")
    with pytest.raises(UserError, match="missing model.json, model.safetensors"):
        load(bad)
    (bad / "baseline.json").write_text(json.dumps({"kind": "baseline", "format_version": 1,
                                                    "labels": ["a", "b"]}), encoding="utf-8")
    with pytest.raises(UserError, match="missing model.skops"):
        load(bad)
    with pytest.raises(UserError, match="unknown model kind 'char_rf'"):
        TextClassifier(kind="char_rf")


def test_predict_command_serves_baseline_folders_too(tmp_path, toy_files, capsys) -> None:
    """One predict interface: `run.py predict` on a baseline folder keeps every row in order."""
    import pandas as pd

    from .conftest import run_main

    rc, _, err = run_main(capsys, "baseline", "--train", str(toy_files["train"]), "--dev", str(toy_files["dev"]),
                          "--out", str(tmp_path / "bl"), "--models", "char_lr")
    assert rc == 0, err
    frame = pd.read_csv(toy_files["test"]).head(12)
    frame.loc[3, "text"] = ""  # an empty text keeps its row, with an empty prediction
    frame.to_csv(tmp_path / "in.csv", index=False)
    rc, _, err = run_main(capsys, "predict", "--model", str(tmp_path / "bl" / "char_lr"), "--input",
                          str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"))
    assert rc == 0, err
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert len(out) == 12 and out["label"].tolist() == frame["label"].tolist()
    assert out.loc[3, "pred_label"] == ""
    kept = out.drop(index=3)
    assert (kept["pred_label"] == kept["label"]).mean() >= 0.9
    rc, _, err = run_main(capsys, "predict", "--model", str(tmp_path / "bl" / "char_lr"), "--text", "好棒赞",
                          "--quantize")
    assert rc == 2 and "BERT models only" in err


@pytest.mark.parametrize("texts", [["北京大学", "上海交通大学", "股市"], ["尾\x00", "中\x00间", "ab"]])
def test_compact_vocabulary_round_trip(texts) -> None:
    """The vocabulary is stored as one string array, in index order, and comes back equal (terms ending
    in NUL, which NumPy strings would drop, keep the dict)."""
    from cls_app.baselines.state import decode, encode
    from cls_app.baselines.tfidf import CompactTfidfVectorizer

    vec = CompactTfidfVectorizer(analyzer="char", ngram_range=(1, 2)).fit(texts)
    before = dict(vec.vocabulary_)
    arrays: dict = {}
    tree = json.loads(json.dumps(encode(vec, arrays)))
    assert vec.vocabulary_ == before  # saving does not change the live object
    loaded = decode(tree, arrays)
    assert loaded.vocabulary_ == before
    assert (loaded.transform(texts) != vec.transform(texts)).nnz == 0
    state = tree["state"]["$dict"]
    has_nul = any(t.endswith("\x00") for t in before)
    assert ("vocabulary_terms_" in state) is not has_nul
    if not has_nul:
        assert state["vocabulary_terms_"]["$strings"] == sorted(before, key=before.__getitem__)


def test_baseline_command_uses_the_train_split(tmp_path, toy_files, capsys) -> None:
    """`baseline` without --dev holds out the same rows `train` would (216 train of 240)."""
    from cls_app.commands import main

    out = tmp_path / "bl"
    assert main(["-q", "baseline", "--train", str(toy_files["train"]), "--test", str(toy_files["test"]),
                 "--out", str(out), "--models", "char_svm", "word_nb"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["char_svm", "word_nb"]
    meta = json.loads((out / "char_svm" / "baseline.json").read_text(encoding="utf-8"))
    assert meta["train_rows"] == 216 and meta["dev"]["n"] == 24 and meta["test"]["n"] == 60
    printed = capsys.readouterr().out
    assert "char_svm" in printed and "word_nb" in printed and "test acc" in printed
    before = sorted(p.name for p in out.iterdir())
    # an unknown name is refused before any work, naming the kinds there are (plugins included)
    assert main(["-q", "baseline", "--train", str(toy_files["train"]), "--out", str(out), "--models", "char_rf"]) == 2
    assert "char_rf: not a baseline kind; choose from char_lr" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
