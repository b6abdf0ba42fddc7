"""Script normalisation (issue 35): every kind sees one script, old folders keep theirs, reports split by script."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.text.script import Normalizer, fold, normalizer, script_of, scripts_of

from .conftest import run_main, write_csv

SPORT = "篮球比赛运动员进球冠军队员赛场"
MONEY = "银行股票经济贷款汇率储蓄债券"


def to_traditional(texts: list[str]) -> list[str]:
    return normalizer("s2t").texts(texts)


def topic_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Two topics whose characters mostly differ between the scripts (篮/籃, 银/銀, 这/這 ...)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label, chars = ("体育", SPORT) if i % 2 == 0 else ("财经", MONEY)
        texts.append("这个" + "".join(rng.choice(chars) for _ in range(rng.randint(4, 9))))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Simplified train and dev, a traditional test, a test that mixes both (half of each)."""
    # (the traditional test's first row is a traditional copy of a train row)
    folder = tmp_path_factory.mktemp("scripts")
    train, dev, test = topic_texts(200, 1), topic_texts(60, 2), topic_texts(60, 3)
    half = len(test[0]) // 2
    mixed = test[0][:half] + to_traditional(test[0][half:])
    copied = [train[0][0], *test[0][1:]]  # its first row: a train row (both 体育), in traditional characters
    return {"train": write_csv(folder / "train.csv", *train), "dev": write_csv(folder / "dev.csv", *dev),
            "trad": write_csv(folder / "trad.csv", to_traditional(copied), test[1]),
            "mixed": write_csv(folder / "mixed.csv", mixed, test[1]), "folder": folder}


# --------------------------------------------------------------------------- the normaliser

TEXTS = st.lists(st.text(alphabet=st.sampled_from(list(SPORT + MONEY + "這個體育ＡＢ１２　，。ｱ﹐ \t豈abc")),
                         max_size=12), max_size=8)


@settings(max_examples=60, deadline=None)
@given(TEXTS, st.sampled_from(["auto", "keep", "t2s", "s2t"]))
def test_conversion_keeps_every_row_in_place(texts, mode) -> None:
    """One text in, one text out, in order; no row gains a line break; converting a text alone gives the
    same as converting it in a list; keep changes nothing."""
    out = Normalizer(mode).texts(texts)
    assert len(out) == len(texts)
    conv = Normalizer(mode)
    assert out == [conv.text(t) for t in texts]
    for before, after in zip(texts, out, strict=True):
        assert ("\n" in after) == ("\n" in before) and ("\r" in after) == ("\r" in before)
    if mode == "keep":
        assert out == texts


def test_folding_and_conversion() -> None:
    assert fold("ＡＢ１２　，ｱ") == "AB12 ,ア"
    assert fold("中文，。、") == "中文,。、"  # the full-width comma is full-width ASCII; 。 and 、 are not
    assert normalizer("auto").text("籃球比賽") == "篮球比赛"
    assert normalizer("auto").text("篮球比赛") == "篮球比赛"
    assert normalizer("s2t").text("篮球比赛") == "籃球比賽"
    assert [script_of(t) for t in ("篮球", "籃球", "篮球籃球", "abc 123", "中文")] == [
        "simplified", "traditional", "mixed", "none", "none"]
    assert scripts_of([None, "", "籃"]) == ["none", "none", "traditional"]


def test_a_list_changed_in_place_is_converted_again() -> None:
    conv = Normalizer("auto")
    texts = ["籃球", "銀行"]
    assert conv.texts(texts) == ["篮球", "银行"]
    texts[1] = "比賽"
    assert conv.texts(texts) == ["篮球", "比赛"]


def test_an_unknown_script_is_a_user_error() -> None:
    from cls_app import TextClassifier
    from cls_app.errors import UserError

    with pytest.raises(UserError, match="--script must be one of auto, keep, t2s, s2t"):
        TextClassifier(kind="char_svm", script="simplified")


# --------------------------------------------------------------------------- every kind


@pytest.mark.parametrize("kind", ["char_svm", "word_nb", "fasttext", "textcnn", "bert"])
def test_a_model_fitted_on_simplified_reads_traditional(kind) -> None:
    """The default (auto) predicts a traditional copy of the test set as it predicts the simplified one; with
    keep the traditional characters are unknown to the model and the copy scores worse (or no better)."""
    from cls_app import TextClassifier
    from cls_app.models import all_kinds

    train, dev, test = topic_texts(200, 1), topic_texts(60, 2), topic_texts(80, 3)
    trad = to_traditional(test[0])
    quick = {"seed": 0, **all_kinds()[kind].quick_settings}
    auto = TextClassifier(kind=kind, **quick).fit(*train, dev=dev)
    assert auto.script == "auto"
    assert auto.predict(trad) == auto.predict(test[0])

    def accuracy(model, texts) -> float:
        return sum(p.label == y for p, y in zip(model.predict(texts), test[1], strict=True)) / len(texts)
    assert accuracy(auto, trad) >= 0.9
    if kind not in ("textcnn", "bert"):  # (seconds a fit: the view is the base class's, one check of keep is enough)
        keep = TextClassifier(kind=kind, script="keep", **quick).fit(*train, dev=dev)
        assert accuracy(keep, trad) <= accuracy(auto, trad)


def test_the_setting_is_in_the_folder_and_old_folders_keep_their_view(tmp_path) -> None:
    """A folder records its script; a folder from before the setting (no ``script``) reads texts as written;
    load(script=...) overrides the folder's view; get_params / clone keep it."""
    import cls_app
    from cls_app import TextClassifier

    train, dev = topic_texts(120, 1), topic_texts(40, 2)
    model = TextClassifier(kind="char_lr", seed=0, script="t2s").fit(*train, dev=dev)
    folder = model.save(tmp_path / "m")
    loaded = cls_app.load(folder)
    assert loaded.script == "t2s" and loaded.get_params()["script"] == "t2s" and loaded.clone().script == "t2s"
    meta_path = folder / "baseline.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    assert meta["params"]["script"] == "t2s"
    del meta["params"]["script"]  # as written before the setting existed
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    old = cls_app.load(folder)
    assert old.script == "keep"
    assert old.view(["籃球"]) == ["籃球"]
    assert cls_app.load(folder, script="auto").view(["籃球"]) == ["篮球"]


def test_ensemble_members_keep_their_own_view() -> None:
    from cls_app import TextClassifier

    train, dev, test = topic_texts(200, 1), topic_texts(80, 2), topic_texts(40, 3)
    ens = TextClassifier(kind="ensemble", members=["char_svm", "word_nb"], seed=0).fit(*train, dev=dev)
    assert all(m.script == "auto" for m in ens.members)
    assert ens.predict(to_traditional(test[0])) == ens.predict(test[0])
    assert [p.label for p in ens.predict(test[0])] == test[1]


# --------------------------------------------------------------------------- commands


def test_commands_report_by_script_and_keep_the_original_text(files, capsys, tmp_path) -> None:
    """baseline records --script, predict writes the user's text back untouched, evaluate and compare split
    a mixed file by script, audit notes a test file in another script and finds a traditional copy."""
    bl = tmp_path / "bl"
    rc, _, err = run_main(capsys, "-q", "baseline", "--train", str(files["train"]), "--dev", str(files["dev"]),
                          "--out", str(bl), "--models", "char_svm", "char_nb")
    assert rc == 0, err
    rc, _, err = run_main(capsys, "-q", "baseline", "--train", str(files["train"]), "--dev", str(files["dev"]),
                          "--out", str(tmp_path / "kept"), "--models", "char_svm", "--script", "keep")
    assert rc == 0, err
    kept = json.loads((tmp_path / "kept" / "char_svm" / "baseline.json").read_text("utf-8"))
    assert kept["params"]["script"] == "keep"

    out = tmp_path / "pred.csv"
    rc, _, err = run_main(capsys, "predict", "--model", str(bl / "char_svm"), "--input", str(files["trad"]),
                          "--output", str(out))
    assert rc == 0, err
    pred, given_rows = pd.read_csv(out), pd.read_csv(files["trad"])
    assert pred["text"].tolist() == given_rows["text"].tolist()  # the traditional text, as given
    assert (pred["pred_label"] == pred["label"]).mean() >= 0.9

    rc, _, err = run_main(capsys, "evaluate", "--model", str(bl / "char_svm"), "--data", str(files["mixed"]),
                          "--out", str(tmp_path / "ev"))
    assert rc == 0, err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text("utf-8"))
    assert set(metrics["by_script"]) == {"simplified", "traditional"}
    assert metrics["by_script"]["traditional"]["n"] == 30
    assert "by script" in (tmp_path / "ev" / "report.txt").read_text("utf-8")
    rc, _, err = run_main(capsys, "evaluate", "--model", str(tmp_path / "kept" / "char_svm"), "--data",
                          str(files["trad"]), "--out", str(tmp_path / "ev_keep"), "--script", "auto")
    assert rc == 0, err  # --script: another view than the folder's, for this command
    assert json.loads((tmp_path / "ev_keep" / "metrics.json").read_text("utf-8"))["accuracy"] >= 0.9

    rc, _, err = run_main(capsys, "compare", "--models", str(bl / "char_svm"), str(tmp_path / "kept" / "char_svm"),
                          "--data", str(files["mixed"]), "--out", str(tmp_path / "cmp"))
    assert rc == 0, err
    summary = json.loads((tmp_path / "cmp" / "comparison.json").read_text("utf-8"))
    auto_row, keep_row = summary["models"]
    assert auto_row["by_script"]["traditional"]["accuracy"] >= keep_row["by_script"]["traditional"]["accuracy"]
    assert "## By script" in (tmp_path / "cmp" / "comparison.md").read_text("utf-8")

    rc, printed, err = run_main(capsys, "audit", "--train", str(files["train"]), "--test", str(files["trad"]),
                                "--out", str(tmp_path / "audit"), "--folds", "3")
    assert rc == 0, err
    assert "100% traditional or mixed script" in printed
    report = json.loads((tmp_path / "audit" / "audit.json").read_text("utf-8"))
    assert report["scripts"][str(files["trad"])] == {"traditional": 1.0}
    assert report["counts"]["leak: exact"] == 1  # the traditional copy of a train row
