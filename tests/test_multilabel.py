"""Multi-label and hierarchical tasks: label cells, thresholds, metrics, and train -> evaluate ->
predict -> API -> baselines -> compare end to end on tiny models (docs/tasks.md)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, hamming_loss

from cls_app.io.labels import parse_label_cell
from cls_app.tasks import LabelSets, SingleLabel
from cls_app.tasks.label_sets import (
    close_upwards,
    hierarchy_parents,
    multilabel_metrics,
    tune_thresholds,
)

from .conftest import TINY_MODEL_ARGS, run_main

GROUPS = {"体育": "球赛跑跳泳冠", "财经": "股票基金涨跌", "科技": "手机电脑芯片"}
TREE = {"体育##足球": "球门射踢", "体育##篮球": "篮筐投扣", "财经##股票": "股涨跌盘", "财经##基金": "基金净值"}
TRAIN_ARGS = [*TINY_MODEL_ARGS, "--epochs", "10", "--lr", "5e-3", "--batch-size", "16", "--patience", "0",
              "--no-cache", "--threads", "1"]


def _label_set_rows(n: int, seed: int, groups: dict[str, str], sizes=(0, 1, 1, 2)) -> list[tuple[str, list[str]]]:
    """Texts made of the characters of 0-2 groups; the labels are those groups (empty: no label)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = rng.sample(sorted(groups), rng.choice(sizes))
        body = "".join(rng.choice(groups[g]) for g in labels for _ in range(5)) or "今天天气不错"
        rows.append(("".join(rng.sample(body, len(body))), labels))
    return rows


def _write(path: Path, rows, sep: str = ",") -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "labels": labs}, ensure_ascii=False) + "\n"
                                for t, labs in rows), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t" if path.suffix == ".tsv" else ",")
            w.writerow(["text", "labels"])
            w.writerows((t, sep.join(labs)) for t, labs in rows)
    return path


@pytest.fixture(scope="module")
def ml(tmp_path_factory) -> dict[str, Path]:
    """A tiny multi-label BERT trained with '|' separators (train CSV, dev JSONL lists, test CSV)."""
    from cls_app.commands import main

    d = tmp_path_factory.mktemp("multilabel")
    files = {"train": _write(d / "train.csv", _label_set_rows(240, 1, GROUPS), "|"),
             "dev": _write(d / "dev.jsonl", _label_set_rows(60, 2, GROUPS)),
             "test": _write(d / "test.csv", _label_set_rows(60, 3, GROUPS), "|"), "out": d / "model", "dir": d}
    rc = main(["train", "--task", "multi-label", "--label-sep", "|", "--train", str(files["train"]), "--dev",
               str(files["dev"]), "--test", str(files["test"]), "--out", str(files["out"]), *TRAIN_ARGS])
    assert rc in (0, None)
    return files


# --------------------------------------------------------------------------- label cells and decisions


def test_label_cells_split_on_the_separator_accept_json_lists_and_may_be_empty() -> None:
    assert parse_label_cell("体育| 财经 ||体育", "multi-label", "|") == ("体育", "财经")
    assert parse_label_cell(["体育", " 科技 "], "multi-label") == ("体育", "科技")
    assert parse_label_cell(None, "multi-label") == ()
    assert parse_label_cell("", "multi-label") == ()
    assert parse_label_cell("体育##足球,财经", "hierarchical") == ("体育", "体育##足球", "财经")
    with pytest.raises(ValueError, match="empty level"):
        parse_label_cell("体育####足球", "hierarchical")


def test_thresholds_are_tuned_globally_and_per_label() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(200, 2))
    # label 0 is separable at 0.3, label 1 at 0.8
    probs = np.column_stack([np.where(y[:, 0], 0.35, 0.25), np.where(y[:, 1], 0.85, 0.75)])
    t = tune_thresholds(probs, y)
    assert 0.25 < t["per_label"][0] <= 0.35 and 0.75 < t["per_label"][1] <= 0.85
    assert 0.05 <= t["global"] <= 0.95
    pred = LabelSets("multi-label", thresholds=t).decide(probs, ["a", "b"])
    assert (pred == y.astype(bool)).all()


def test_a_predicted_child_implies_its_parent() -> None:
    labels = ["体育", "体育##足球", "体育##足球##英超", "财经"]
    parents = hierarchy_parents(labels, "##")
    assert parents == [-1, 0, 1, -1]
    pred = close_upwards(np.array([[0, 0, 1, 0], [0, 0, 0, 1]], dtype=bool), parents)
    assert pred.tolist() == [[True, True, True, False], [False, False, False, True]]
    task = LabelSets("hierarchical", thresholds={"global": 0.5, "per_label": [0.5] * 4})
    assert task.cells(np.array([[0.1, 0.2, 0.9, 0.7], [np.nan] * 4]), labels) == ["体育##足球##英超,财经", None]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(2, 6), st.integers(0, 10_000))
def test_label_set_metrics_agree_with_scikit_learn(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    yt, yp = rng.integers(0, 2, size=(n, k)), rng.integers(0, 2, size=(n, k))
    yt[:, 0] = 1  # sklearn's samples-F1 of a text with no true and no predicted label differs by version
    m = multilabel_metrics(yt, yp, [f"l{j}" for j in range(k)])
    assert m["micro_f1"] == pytest.approx(f1_score(yt, yp, average="micro", zero_division=0))
    assert m["macro_f1"] == pytest.approx(f1_score(yt, yp, average="macro", zero_division=0))
    assert m["samples_f1"] == pytest.approx(f1_score(yt, yp, average="samples", zero_division=0))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(yt, yp))
    assert m["subset_accuracy"] == pytest.approx(float((yt == yp).all(axis=1).mean()))
    assert sum(sum(r) for r in m["label_confusion"]["l0"]) == n


# --------------------------------------------------------------------------- end to end


def test_train_records_the_task_and_thresholds_and_scores_test(ml) -> None:
    config = json.loads((ml["out"] / "config.json").read_text(encoding="utf-8"))["cls_app"]
    assert config["task"] == "multi-label" and config["label_sep"] == "|"
    assert len(config["thresholds"]["per_label"]) == 3
    metrics = json.loads((ml["out"] / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["labels"] == sorted(GROUPS)
    assert metrics["test"]["micro_f1"] > 0.8, metrics["test"]
    for name in ("metrics.json", "report.txt", "label_confusion.csv", "label_confusion.png"):
        assert (ml["out"] / "test_eval" / name).is_file()
    log = pd.read_csv(ml["out"] / "train_log.csv")
    assert len(log) == 10


def test_evaluate_reads_the_models_separator_and_writes_the_label_set_report(ml, capsys) -> None:
    out = ml["dir"] / "eval"
    rc, stdout, _ = run_main(capsys, "evaluate", "--model", str(ml["out"]), "--data", str(ml["test"]), "--out",
                             str(out))
    assert rc == 0 and "hamming_loss=" in stdout
    report = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    saved = json.loads((ml["out"] / "metrics.json").read_text(encoding="utf-8"))["test"]
    assert report["micro_f1"] == pytest.approx(saved["micro_f1"], abs=1e-6)
    table = pd.read_csv(out / "label_confusion.csv")
    assert list(table["label"]) == sorted(GROUPS)
    assert (table[["tn", "fp", "fn", "tp"]].sum(axis=1) == 60).all()
    # per-label error lists: one row per wrong decision, as many as the confusion tables' fp + fn
    errors = pd.read_csv(out / "errors.csv", keep_default_na=False)
    by_label = table.set_index("label")
    for name in sorted(GROUPS):
        mine = errors[errors["label"] == name]
        assert (mine["error"] == "extra").sum() == by_label.loc[name, "fp"]
        assert (mine["error"] == "missed").sum() == by_label.loc[name, "fn"]
        assert report["label_errors"][name] == {"missed": int(by_label.loc[name, "fn"]),
                                                "extra": int(by_label.loc[name, "fp"])}
    assert list(errors["confidence"]) == sorted(errors["confidence"], reverse=True)
    assert ((errors["error"] == "extra") == (errors["prob"] == errors["confidence"])).all()


def test_predict_writes_pred_labels_and_a_probability_per_label(ml, capsys) -> None:
    out = ml["dir"] / "pred.csv"
    rc, _, _ = run_main(capsys, "predict", "--model", str(ml["out"]), "--input", str(ml["test"]), "--output",
                        str(out))
    assert rc == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["text", "labels", "pred_labels", *(f"prob_{g}" for g in sorted(GROUPS)),
                                   "abstained", "reason", "ood_score"]
    agree = sum(set(filter(None, p.split("|"))) == set(filter(None, t.split("|")))
                for p, t in zip(table["pred_labels"], table["labels"], strict=True))
    assert agree >= 0.6 * len(table)
    top = ml["dir"] / "top.jsonl"
    assert run_main(capsys, "predict", "--model", str(ml["out"]), "--input", str(ml["test"]), "--output",
                    str(top), "--top-k", "2")[0] == 0
    row = json.loads(top.read_text(encoding="utf-8").splitlines()[0])
    assert {"pred_labels", "top1_label", "top1_prob", "top2_label", "top2_prob"} <= set(row)
    assert row["top1_prob"] >= row["top2_prob"]


def test_classifier_api_returns_label_sets(ml) -> None:
    from cls_app import Classifier

    clf = Classifier.load(ml["out"])
    sports, both, empty = clf.predict(["球赛跑跳泳冠球赛", "股票基金涨跌手机电脑芯片", ""])
    assert sports.labels == ("体育",)
    assert set(both.labels) == {"财经", "科技"}
    assert empty.labels is None and empty.probs == ()
    probs = clf.predict_proba(["球赛跑跳泳冠球赛"])
    assert probs.shape == (1, 3) and probs.sum() < 2.0  # independent sigmoids, not a softmax
    assert dict(sports.probs)["体育"] == pytest.approx(float(probs[0, 0]), abs=1e-6)


def test_one_vs_rest_baselines_and_compare(ml, capsys) -> None:
    out = ml["dir"] / "baselines"
    rc, stdout, _ = run_main(capsys, "baseline", "--task", "multi-label", "--label-sep", "|", "--train",
                             str(ml["train"]), "--dev", str(ml["dev"]), "--test", str(ml["test"]), "--out", str(out),
                             "--models", "char_lr", "char_svm")
    assert rc == 0 and "micro-F1" in stdout
    meta = json.loads((out / "char_svm" / "baseline.json").read_text(encoding="utf-8"))
    assert meta["task"] == "multi-label" and meta["test"]["micro_f1"] > 0.9
    assert len(meta["thresholds"]["per_label"]) == 3
    cmp = ml["dir"] / "cmp"
    rc, stdout, _ = run_main(capsys, "compare", "--models", str(ml["out"]), str(out), "--data", str(ml["test"]),
                             "--out", str(cmp), "--bootstrap", "50")
    assert rc == 0 and "micro-F1" in stdout
    summary = json.loads((cmp / "comparison.json").read_text(encoding="utf-8"))
    assert [m["name"] for m in summary["models"]] == ["model", "char_lr", "char_svm"]
    assert summary["significance"]["n"] == 60


def test_hierarchical_training_predicts_consistent_paths(tmp_path, capsys) -> None:
    files = {s: _write(tmp_path / f"{s}.tsv", _label_set_rows(n, seed, TREE, (1, 1, 2)))
             for s, n, seed in (("train", 200, 1), ("dev", 50, 2))}
    out = tmp_path / "model"
    rc, stdout, _ = run_main(capsys, "train", "--task", "hierarchical", "--train", str(files["train"]), "--dev",
                             str(files["dev"]), "--out", str(out), *TRAIN_ARGS)
    assert rc == 0 and "level 2:" in stdout
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["labels"]) == {"体育", "财经", *TREE}
    assert set(metrics["dev"]["per_level"]) == {"1", "2"}
    from cls_app import Classifier

    clf = Classifier.load(out)
    for p in clf.predict(["球门射踢球门", "基金净值基金", "篮筐投扣股涨跌盘"]):
        for name in p.labels:  # every predicted path brings its parent
            head, _, _ = name.rpartition("##")
            assert not head or head in p.labels
    assert clf.predict(["球门射踢球门"])[0].labels == ("体育", "体育##足球")


# --------------------------------------------------------------------------- bad input and old folders


def _fails(capsys, *args: str) -> str:
    rc, _, err = run_main(capsys, *args)
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_label_set_mistakes_are_one_line_errors(tmp_path, capsys) -> None:
    good = _write(tmp_path / "good.tsv", _label_set_rows(40, 1, TREE, (1,)))
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\n球门射踢\t体育##足球\n篮筐投扣\t体育####篮球\n", encoding="utf-8")
    err = _fails(capsys, "train", "--task", "hierarchical", "--train", str(bad), "--out", str(tmp_path / "m"),
                 *TRAIN_ARGS)
    assert "bad.tsv" in err and "row 3" in err and "empty level" in err
    assert not (tmp_path / "m").exists()
    err = _fails(capsys, "train", "--task", "multi-label", "--oversample", "--train", str(good), "--out",
                 str(tmp_path / "m"), *TRAIN_ARGS)
    assert "--class-weight balanced" in err
    err = _fails(capsys, "train", "--metric", "micro_f1", "--train", str(good), "--out", str(tmp_path / "m"),
                 *TRAIN_ARGS)
    assert "--task multi-label" in err
    err = _fails(capsys, "train", "--task", "hierarchical", "--label-sep", "#", "--train", str(good), "--out",
                 str(tmp_path / "m"), *TRAIN_ARGS)
    assert "overlap" in err


def test_unknown_labels_at_evaluation_name_the_row(ml, tmp_path, capsys) -> None:
    data = _write(tmp_path / "x.csv", [("球赛跑跳", ["体育"]), ("股票基金", ["财经", "娱乐"])], "|")
    err = _fails(capsys, "evaluate", "--model", str(ml["out"]), "--data", str(data))
    assert "x.csv" in err and "row 3" in err and "娱乐" in err


def test_a_folder_without_a_task_is_single_label(tmp_path) -> None:
    from cls_app.models.folders import folder_task

    (tmp_path / "config.json").write_text(json.dumps({"cls_app": {"format_version": 1}}), encoding="utf-8")
    assert folder_task(tmp_path) == SingleLabel() and not folder_task(tmp_path).multi


def test_an_interrupted_multilabel_run_resumes_to_the_same_model(tmp_path, capsys, monkeypatch) -> None:
    from cls_app.training.trainer import Trainer as MultiLabelTrainer

    train = _write(tmp_path / "train.csv", _label_set_rows(96, 1, GROUPS))
    dev = _write(tmp_path / "dev.csv", _label_set_rows(30, 2, GROUPS))

    def args(out: Path) -> list[str]:
        return ["train", "--task", "multi-label", "--train", str(train), "--dev", str(dev), "--out", str(out),
                "--class-weight", "balanced", *TINY_MODEL_ARGS, "--epochs", "2", "--batch-size", "8",
                "--save-every", "5", "--patience", "0", "--no-cache", "--threads", "1", "--seed", "3"]

    assert run_main(capsys, *args(tmp_path / "ref"))[0] == 0
    original, calls = MultiLabelTrainer.batch_loss, {"n": 0}

    def interrupted(self, logits, rows):
        calls["n"] += 1
        if calls["n"] == 18:  # the second epoch, after checkpoints at steps 5, 10 and the first epoch's end
            raise KeyboardInterrupt
        return original(self, logits, rows)

    monkeypatch.setattr(MultiLabelTrainer, "batch_loss", interrupted)
    assert run_main(capsys, *args(tmp_path / "cut"))[0] == 130
    monkeypatch.setattr(MultiLabelTrainer, "batch_loss", original)
    rc, _, err = run_main(capsys, "train", "--resume", str(tmp_path / "cut"))
    assert rc == 0, err
    ref, cut = (json.loads((tmp_path / d / "metrics.json").read_text(encoding="utf-8")) for d in ("ref", "cut"))
    assert cut["resumed"] and cut["dev"] == ref["dev"] and cut["steps"] == ref["steps"] == 24
    assert (json.loads((tmp_path / "cut" / "config.json").read_text(encoding="utf-8"))["cls_app"]["thresholds"]
            == ref["dev"]["thresholds"])


def test_label_sets_of_sentence_pairs(tmp_path) -> None:
    from cls_app.io.labels import load_label_sets
    from cls_app.io.pairs import split_pair
    from cls_app.io.records import DataOptions

    path = tmp_path / "pairs.jsonl"
    path.write_text('{"text": "球赛", "b": "股票", "labels": ["体育", "财经"]}\n{"text": "手机", "b": "芯片", '
                    '"labels": []}\n', encoding="utf-8")
    data = load_label_sets(path, DataOptions(train=str(path), task="multi-label", text_pair_col="b"))
    assert [split_pair(t) for t in data.texts] == [("球赛", "股票"), ("手机", "芯片")]
    assert data.label_sets == [("体育", "财经"), ()]
