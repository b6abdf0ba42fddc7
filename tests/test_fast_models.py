"""The small kinds in the main job, distillation into a fast student, the fastest-within-margin pointer, the chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app import TextClassifier, load
from cls_app.evaluation.compare import ModelResult, accuracy_interval, plot_comparison
from cls_app.evaluation.recommend import Candidate, fastest_within
from cls_app.models.textcnn import TextCnnSettings, bigram_bucket, bigram_buckets, build_network

from .conftest import run_main, toy_texts, write_csv


def test_distill_a_textcnn_student_from_a_teacher_with_unlabeled_text(tmp_path, capsys):
    teacher = TextClassifier(kind="char_lr").fit(*toy_texts(300, 1), dev=toy_texts(100, 2)).save(tmp_path / "teacher")
    train = write_csv(tmp_path / "train.csv", *toy_texts(200, 3))
    dev = write_csv(tmp_path / "dev.csv", *toy_texts(80, 4))
    (tmp_path / "pool.txt").write_text("\n".join(toy_texts(150, 5)[0]) + "\n", encoding="utf-8")
    code, out, err = run_main(capsys, "distill", "--teacher", str(teacher), "--train", str(train), "--dev", str(dev),
                              "--unlabeled", str(tmp_path / "pool.txt"), "--out", str(tmp_path / "student"),
                              "--temperature", "2")
    assert code == 0, err
    assert "learned from 350 texts (150 unlabeled)" in out
    meta = json.loads((tmp_path / "student" / "classifier.json").read_text(encoding="utf-8"))
    assert meta["family"] == "textcnn" and meta["distilled"]["temperature"] == 2.0
    assert meta["distilled"]["teacher_kind"] == "char_lr" and meta["distilled"]["unlabeled"] == 150
    student, reference = load(tmp_path / "student"), load(teacher)
    texts = toy_texts(60, 6)[0]
    agree = np.mean([a.label == b.label for a, b in zip(student.predict(texts), reference.predict(texts), strict=True)])
    assert agree >= 0.95
    code, _, err = run_main(capsys, "distill", "--teacher", str(teacher), "--train", str(train), "--temperature", "0",
                            "--out", str(tmp_path / "x"))
    assert code == 2 and "--temperature must be positive" in err and not (tmp_path / "x").exists()


def test_fastest_within_half_a_point(tmp_path):
    def cand(name: str, dev: float) -> Candidate:
        (tmp_path / name).mkdir(exist_ok=True)
        return Candidate(name, tmp_path / name, "baseline", {"macro_f1": dev}, "dev")

    found = [cand("ensemble", 0.900), cand("char_svm", 0.896), cand("word_nb", 0.880)]
    speeds = {"ensemble": 500.0, "char_svm": 40000.0, "word_nb": 90000.0}
    fast = fastest_within(found, found[0], "macro_f1", speeds, tmp_path)
    assert fast is not None and fast["name"] == "char_svm" and fast["path"] == "char_svm"
    assert fastest_within(found, found[0], "macro_f1", {}, tmp_path) is None


def test_comparison_chart_sorts_marks_and_spans_the_range(tmp_path):
    def result(name: str, right: int, floor: bool = False) -> ModelResult:
        correct = np.array([True] * right + [False] * (100 - right))
        return ModelResult(name, "baseline", Path(name), {"accuracy": right / 100}, correct, 1.0, 1, 1.0, floor)

    low, high = accuracy_interval(np.array([True] * 80 + [False] * 20))
    assert low < 0.8 < high and high - low < 0.2
    import matplotlib

    matplotlib.use("Agg")
    results = [result("a", 85), result("b", 88), result("majority", 30, floor=True)]
    plot_comparison(results, tmp_path / "c.png", "toy", recommended="b")
    assert (tmp_path / "c.png").stat().st_size > 5000


def test_train_time_limit_stops_cleanly_and_keeps_the_best_model(tmp_path, capsys):
    from .conftest import TINY_MODEL_ARGS

    train = write_csv(tmp_path / "train.csv", *toy_texts(400, 1))
    dev = write_csv(tmp_path / "dev.csv", *toy_texts(60, 2))
    out = tmp_path / "run"
    code, _, err = run_main(capsys, "train", "--train", str(train), "--dev", str(dev), "--out", str(out),
                            *TINY_MODEL_ARGS, "--epochs", "50", "--batch-size", "8", "--patience", "0",
                            "--time-limit", "0.05")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # scored where it stopped, the best model so far kept
    assert metrics["stopped_by_time"] is True and metrics["dev"] and metrics["best_epoch"] < 50
    assert metrics["train_seconds"] < 60  # 50 epochs would take far longer
    assert load(out).predict(["这个好棒"])[0].label in ("正面", "负面")
    code, _, err = run_main(capsys, "train", "--train", str(train), "--out", str(tmp_path / "x"), "--time-limit", "0")
    assert code == 2 and "--time-limit must be a positive number of minutes" in err


def test_small_training_sets_get_more_epochs():
    texts, labels = toy_texts(40, 1)  # one batch of 64 per epoch
    cnn = TextClassifier(kind="textcnn", epochs=2, min_steps=7, embed=8, filters=8, buckets=100).fit(texts, labels)
    assert cnn.meta["epochs"] == 7
    assert TextClassifier(kind="textcnn", epochs=2, min_steps=0, embed=8, filters=8, buckets=100).fit(
        texts, labels).meta["epochs"] == 2
    ft = TextClassifier(kind="fasttext", epoch=3, min_examples=400, dim=8, buckets=1000).fit(texts, labels)
    assert ft.meta["epochs"] == 10  # 400 lines / 40 rows
    assert TextClassifier(kind="fasttext", epoch=3, min_examples=0, dim=8, buckets=1000).fit(
        texts, labels).meta["epochs"] == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0x10FFFF), st.integers(0, 0x10FFFF)), min_size=1, max_size=50),
       st.sampled_from([1, 7, 50_000, 2 ** 32]))
def test_bigram_buckets_match_crc32_of_the_utf8_bytes(pairs, buckets):
    first, second = (np.array(column, dtype=np.int64) for column in zip(*pairs, strict=True))
    expected = [bigram_bucket(chr(a), chr(b), buckets) for a, b in pairs]  # zlib.crc32, surrogates passed
    assert bigram_buckets(first, second, buckets).tolist() == expected


def test_textcnn_pooling_equals_one_convolution_per_width():
    import torch

    settings_ = TextCnnSettings(embed=8, filters=5, kernels=(1, 2, 4), buckets=50)
    net = build_network(20, 3, settings_).eval()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 22, (6, 9), generator=gen)
    grams = torch.randint(1, 51, (6, 9), generator=gen)
    lengths = [9, 9, 5, 1, 3, 9]
    for row, n in enumerate(lengths):
        ids[row, n:], grams[row, n:] = 0, 0
    x = (net.chars(ids) + net.grams(grams)).transpose(1, 2)
    expected = []
    for conv in net.convs:  # Kim's TextCNN: relu(conv) max-pooled over the text's own positions
        h = torch.relu(conv(x))[:, :, : ids.shape[1]]
        expected.append(torch.stack([h[r, :, :n].max(dim=1).values for r, n in enumerate(lengths)]))
    with torch.no_grad():
        assert torch.allclose(net.pooled(ids, grams), torch.cat(expected, dim=1), atol=1e-5)
        full = ids[[0, 1, 5]]  # no padding in the batch: the mask is skipped, the result the same
        assert torch.allclose(net.pooled(full, grams[[0, 1, 5]]), torch.cat(expected, dim=1)[[0, 1, 5]], atol=1e-5)


def test_textcnn_reads_any_python_string_in_either_precision(tmp_path):
    texts, labels = toy_texts(40, 1)
    folder = TextClassifier(kind="textcnn", epochs=1, min_steps=0, embed=8, filters=8, buckets=100).fit(
        texts, labels).save(tmp_path / "cnn")
    odd = ["\ud800好", "😀", "a"]  # a lone surrogate, a 4-byte character, ASCII
    fp32, bf16 = (load(folder, precision=p).predict_proba([*odd, *texts]) for p in ("fp32", "bf16"))
    assert np.isfinite(fp32).all() and np.allclose(fp32.sum(axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(fp32, bf16) and np.abs(fp32 - bf16).max() < 0.05
    described = load(folder, precision="bf16", batch_size=32).describe()  # what /info shows
    assert (described["precision"], described["batch_size"], described["backend"]) == ("bf16", 32, "torch")
    assert load(folder).describe()["batch_size"] == 256


def test_the_job_distills_a_student_when_the_recommended_model_declares_a_high_cost(tmp_path, capsys, monkeypatch):
    from cls_app.models.ensemble import EnsembleClassifier
    from cls_app.workflow import main_job

    from .conftest import noisy_files

    assert TextClassifier(kind="bert").prediction_cost == 30.0
    members = [TextClassifier(kind=k) for k in ("char_svm", "word_nb", "textcnn")]
    assert EnsembleClassifier(members=members).prediction_cost == 6.0  # the members' sum, not the class's
    files = noisy_files(tmp_path)
    common = ["-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"]),
              "--no-cache", "--with-baselines", "--kinds", "char_svm", "word_nb", "textcnn", "--seed", "3",
              "--set", "textcnn.embed=16", "--set", "textcnn.filters=16", "--set", "textcnn.buckets=2000",
              "--set", "textcnn.min_steps=40"]  # (the student takes the job's textcnn settings too)
    assert run_main(capsys, *common, "--out", str(tmp_path / "cheap"))[0] == 0  # cost 6 at most: no student
    assert not (tmp_path / "cheap" / "baselines" / "student").exists()
    assert not (tmp_path / "cheap" / "ensemble_fast").exists()  # nothing costly to leave out
    monkeypatch.setattr(main_job, "STUDENT_ABOVE_COST", 0.5)  # every recommendation now asks for one ...
    assert run_main(capsys, *common, "--out", str(tmp_path / "labeled_only"))[0] == 0
    assert not (tmp_path / "labeled_only" / "baselines" / "student").exists()  # ... with texts to learn from
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(toy_texts(200, 9)[0]), encoding="utf-8")
    rc, _, err = run_main(capsys, *common, "--unlabeled", str(pool), "--out", str(tmp_path / "run"))
    assert rc == 0, err
    student = load(tmp_path / "run" / "baselines" / "student", follow=False)
    assert student.get_params()["embed"] == 16  # the job's --set textcnn.embed
    assert student.kind == "textcnn" and student.predict(["好评"])[0].label in student.labels
    rows = json.loads((tmp_path / "run" / "comparison" / "comparison.json").read_text(encoding="utf-8"))["models"]
    assert "student" in {r["name"] for r in rows}


def test_a_fast_ensemble_of_the_cheap_members_sits_beside_one_that_keeps_a_costly_member(tmp_path, capsys,
                                                                                          monkeypatch):
    from cls_app.workflow import main_job

    from .conftest import noisy_files

    files = noisy_files(tmp_path)
    monkeypatch.setattr(main_job, "STUDENT_ABOVE_COST", 2.5)  # textcnn (3) counts as costly here, as BERT does
    monkeypatch.setattr(main_job, "student_time", lambda *a: (None, "not this test's subject"))  # (it is slow)
    out = tmp_path / "run"
    rc, text, err = run_main(capsys, "-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]),
                             "--test", str(files["test"]), "--no-cache", "--with-baselines", "--kinds", "char_svm",
                             "word_nb", "textcnn", "--set", "textcnn.embed=16", "--set", "textcnn.filters=16",
                             "--set", "textcnn.buckets=2000", "--set", "textcnn.min_steps=40", "--prune", "0",
                             "--out", str(out))  # the main ensemble keeps every member (textcnn: half the cost)
    assert rc == 0, err
    members = [m["name"] for m in json.loads((out / "ensemble" / "ensemble.json").read_text())["members"]]
    assert sorted(members) == ["char_svm", "textcnn", "word_nb"]
    fast = json.loads((out / "ensemble_fast" / "ensemble.json").read_text())
    assert sorted(fast["offered"]) == ["char_svm", "word_nb"]  # the cheap ones, on the same dev predictions
    rows = {r["name"] for r in json.loads((out / "comparison" / "comparison.json").read_text())["models"]}
    assert {"ensemble", "ensemble_fast"} <= rows
    assert load(out / "ensemble_fast").predict(["好评"])[0].label in ("正面", "负面")
