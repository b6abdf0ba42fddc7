"""Long texts: truncation strategies keep the right tokens; windows cover the text; pooling;
training and evaluating with each strategy through the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cls_app.modeling.bert import BertClassifier, scratch_config
from cls_app.modeling.folder import load_model_dir
from cls_app.runtime.engine import predict_logits, predict_text_logits
from cls_app.text.long_text import LongTextOptions, encode_texts, pool_logits, truncate, window_starts, windows
from cls_app.text.tokenizer import CharTokenizer

from .conftest import TINY_MODEL_ARGS, run_main, write_csv

IDS = list(range(100, 120))  # 20 "tokens"


def test_truncation_strategies_keep_the_right_tokens() -> None:
    assert truncate(IDS, 6, "head") == [100, 101, 102, 103, 104, 105]
    assert truncate(IDS, 6, "tail") == [114, 115, 116, 117, 118, 119]
    assert truncate(IDS, 6, "head+tail", head_tokens=2) == [100, 101, 116, 117, 118, 119]
    assert truncate(IDS, 6, "head+tail", head_tokens=0) == truncate(IDS, 6, "tail")
    assert truncate(IDS, 6, "head+tail", head_tokens=6) == truncate(IDS, 6, "head")
    # default head share: 128 of 510, as in Sun et al. 2019
    assert truncate(list(range(1000)), 510, "head+tail") == list(range(128)) + list(range(1000 - 382, 1000))
    for strategy in ("head", "tail", "head+tail"):
        assert truncate(IDS, 50, strategy) == IDS  # short texts are untouched


@given(st.lists(st.integers(0, 50), max_size=60), st.integers(0, 40), st.data())
def test_head_plus_tail_is_a_prefix_and_a_suffix(ids: list[int], limit: int, data) -> None:
    head = data.draw(st.integers(0, limit))
    got = truncate(ids, limit, "head+tail", head_tokens=head)
    assert len(got) == min(len(ids), limit)
    if len(ids) > limit:
        assert got[:head] == ids[:head]
        assert got[head:] == ids[len(ids) - (limit - head):]


def test_encode_truncation_with_cls_and_sep() -> None:
    tok = CharTokenizer.build(["一二三四五六七八九十"])
    text = "一二三四五六七八九十"
    assert tok.decode(tok.encode(text, 6)) == "[CLS]一二三四[SEP]"  # default stays head
    assert tok.decode(tok.encode(text, 6, truncation="tail")) == "[CLS]七八九十[SEP]"
    assert tok.decode(tok.encode(text, 6, truncation="head+tail", head_tokens=1)) == "[CLS]一八九十[SEP]"
    assert tok.encode_batch([text], 6, truncation="tail") == [tok.encode(text, 6, truncation="tail")]


@given(st.integers(0, 200), st.integers(1, 30), st.data())
def test_windows_cover_the_text_in_order(n: int, size: int, data) -> None:
    stride = data.draw(st.integers(1, size))
    ids = list(range(n))
    wins = windows(ids, size, stride)
    starts = window_starts(n, size, stride)
    assert all(len(w) <= size for w in wins)
    assert sorted(set().union(*map(set, wins))) == ids  # every token in some window
    assert starts[0] == 0 and (n <= size or starts[-1] + size == n)  # the last window ends at the end
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:], strict=False))
    for start, w in zip(starts, wins, strict=True):
        assert w == ids[start : start + size]


def test_pooling_on_a_toy_case_with_a_known_answer() -> None:
    logits = np.array([[1.0, 0.0], [3.0, -2.0], [0.0, 5.0], [-1.0, 1.0], [2.0, 2.0]], dtype=np.float32)
    owners = [0, 0, 1, 1, 2]  # text 0 has two windows, text 1 two, text 2 one
    np.testing.assert_allclose(pool_logits(logits, owners, 3, "mean"), [[2.0, -1.0], [-0.5, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(pool_logits(logits, owners, 3, "max"), [[3.0, 0.0], [0.0, 5.0], [2.0, 2.0]])
    with pytest.raises(ValueError):
        pool_logits(logits, [0, 0, 0, 0, 0], 2, "mean")  # text 1 owns no window


def test_chunk_prediction_pools_the_windows_of_each_text() -> None:
    tok = CharTokenizer.build(["一二三四五六七八九十"])
    torch.manual_seed(0)
    model = BertClassifier(scratch_config(len(tok), ["a", "b"], layers=1, hidden=16, heads=2)).eval()
    texts = ["一二三四五六七八九十一二三", "五六"]
    opts = LongTextOptions(long_text="chunks", chunk_stride=3, chunk_pool="max")
    enc = encode_texts(tok, texts, 6, opts)
    assert enc.owners.tolist() == [0, 0, 0, 0, 1]  # 13 tokens, windows of 4 starting 0, 3, 6, 9
    assert tok.decode(enc.seqs[3]) == "[CLS]十一二三[SEP]"
    window_logits = predict_logits(model, enc.seqs, tok.pad_id)
    got = predict_text_logits(model, tok, texts, 6, opts)
    np.testing.assert_allclose(got, np.stack([window_logits[:4].max(0), window_logits[4]]), rtol=1e-5)


# --------------------------------------------------------------------------- end to end


def _end_signal_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Long texts whose class shows only in their last few characters."""
    rng = random.Random(seed)
    filler, pos, neg = "的了是在和有这个我们一不", "好棒赞喜爱优美", "差烂坏慢贵糟"
    texts, labels = [], []
    for i in range(n):
        label = "正面" if i % 2 else "负面"
        body = "".join(rng.choice(filler) for _ in range(rng.randint(40, 70)))
        texts.append(body + "".join(rng.choice(pos if label == "正面" else neg) for _ in range(4)))
        labels.append(label)
    return texts, labels


@pytest.fixture
def end_signal_files(tmp_path: Path) -> dict[str, Path]:
    return {split: write_csv(tmp_path / f"{split}.csv", *_end_signal_texts(n, seed))
            for split, n, seed in (("train", 200, 1), ("dev", 40, 2), ("test", 60, 3))}


def _train(capsys, files: dict[str, Path], out: Path, *flags: str) -> dict:
    rc, _, err = run_main(
        capsys, "train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"]),
        "--out", str(out), "--max-len", "24", "--epochs", "4", "--batch-size", "16", "--lr", "3e-3",
        "--threads", "1", *TINY_MODEL_ARGS, *flags,
    )
    assert rc == 0, err
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_tail_and_chunks_see_what_head_truncation_cuts_off(capsys, tmp_path, end_signal_files) -> None:
    head = _train(capsys, end_signal_files, tmp_path / "head")
    tail = _train(capsys, end_signal_files, tmp_path / "tail", "--truncation", "tail")
    chunks = _train(capsys, end_signal_files, tmp_path / "chunks", "--long-text", "chunks", "--chunk-pool", "max")
    assert head["test"]["accuracy"] <= 0.75  # the class never reaches the model
    assert tail["test"]["accuracy"] >= 0.9
    assert chunks["test"]["accuracy"] >= 0.9

    # the model folder remembers the strategy; evaluate uses it (same figures as training's test)
    loaded = load_model_dir(tmp_path / "chunks")
    assert loaded.long_text.long_text == "chunks" and loaded.long_text.chunk_pool == "max"
    assert loaded.long_text.chunk_stride == 16  # 3/4 of the 22-token window
    rc, _, err = run_main(capsys, "evaluate", "--model", str(tmp_path / "chunks"),
                          "--data", str(end_signal_files["test"]), "--out", str(tmp_path / "eval"))
    assert rc == 0, err
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["accuracy"] == chunks["test"]["accuracy"]
    # evaluate can override the stored strategy: head truncation hides the class again
    rc, _, err = run_main(capsys, "evaluate", "--model", str(tmp_path / "tail"), "--data",
                          str(end_signal_files["test"]), "--out", str(tmp_path / "eval2"), "--truncation", "head")
    assert rc == 0, err
    assert json.loads((tmp_path / "eval2" / "metrics.json").read_text())["accuracy"] <= 0.75
    # predict (the Classifier API behind `run.py predict`) uses the stored strategy as well
    from cls_app import Classifier
    from cls_app.tasks import compute_metrics

    test = __import__("pandas").read_csv(end_signal_files["test"])
    for name, figures in (("chunks", chunks), ("tail", tail)):
        clf = Classifier.load(tmp_path / name)
        preds = [p.label for p in clf.predict(test["text"].tolist())]
        names = sorted(set(test["label"]))
        acc = compute_metrics([names.index(x) for x in test["label"]], [names.index(x) for x in preds], names)
        assert acc["accuracy"] == pytest.approx(figures["test"]["accuracy"]), name
