"""Sentence pairs: [CLS] A [SEP] B [SEP] with BertTokenizer's longest_first truncation, segment ids,
the fast path, and train -> evaluate -> predict -> API on a tiny model (docs/tasks.md)."""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cls_app.errors import UserError
from cls_app.io.pairs import join_pair, split_pair
from cls_app.modeling.bert import BertClassifier, scratch_config, segment_ids
from cls_app.modeling.fast import fast_classifier
from cls_app.text.long_text import LongTextOptions, encode_texts
from cls_app.text.pairs import encode_pair, truncate_longest_first
from cls_app.text.tokenizer import SPECIAL_TOKENS, CharTokenizer

from .conftest import TINY_MODEL_ARGS, run_main

VOCAB = [*SPECIAL_TOKENS, *"新闻中国的人大学生日本北京市发布会手机球赛股票", "hello", "world", "##s"]
GROUPS = ["球赛跑跳泳冠", "股票基金涨跌", "手机电脑芯片"]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("pairvocab") / "vocab.txt"
    path.write_text("".join(t + "\n" for t in VOCAB), encoding="utf-8")
    return CharTokenizer.from_file(path), transformers.BertTokenizer(str(path), do_lower_case=True)


TEXTS = st.lists(st.sampled_from([*"新闻中国的人大学生日本北京市发布会手机球赛股票未知", " ", "hello ", "worlds "]),
                 min_size=1, max_size=30).map("".join).filter(str.strip)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(TEXTS, TEXTS, st.integers(3, 40))
def test_pairs_encode_as_bert_tokenizer_does(tokenizers, a: str, b: str, max_len: int) -> None:
    ours, bert = tokenizers
    want = bert(a, b, truncation="longest_first", max_length=max_len)
    got = encode_pair(ours, join_pair(a, b), max_len)
    assert got == want["input_ids"]
    ids = torch.tensor([got])
    assert segment_ids(ids, ours.sep_id)[0].tolist() == want["token_type_ids"]


def test_a_literal_sep_in_a_pair_text_does_not_move_the_segments(tokenizers) -> None:
    ours, bert = tokenizers
    a, b = "新闻[SEP]中国", "手机[SEP]"
    want = bert(a, b)
    got = encode_pair(ours, join_pair(a, b), 64)
    unk, sep = ours.unk_id, ours.sep_id
    # the same ids as BertTokenizer's, except that the literal [SEP]s inside the texts are [UNK]
    ids = want["input_ids"]
    real = {len(bert(a, add_special_tokens=False)["input_ids"]) + 1, len(ids) - 1}  # the two separators
    assert got == [unk if (i == sep and k not in real) else i for k, i in enumerate(ids)]
    assert got.count(sep) == 2
    assert segment_ids(torch.tensor([got]), sep)[0].tolist() == want["token_type_ids"]


def test_longest_first_cuts_the_longer_text_first() -> None:
    assert truncate_longest_first([1] * 10, [2] * 3, 9) == ([1] * 6, [2] * 3)
    assert truncate_longest_first([1] * 5, [2] * 5, 6) == ([1] * 3, [2] * 3)
    assert truncate_longest_first([1] * 5, [2] * 4, 5) == ([1] * 3, [2] * 2)
    assert truncate_longest_first([1], [2], 1) == ([], [2])  # a tie: the first text gives way
    assert truncate_longest_first([1, 2], [3], 5) == ([1, 2], [3])


def test_pair_texts_round_trip_and_missing_halves_are_empty() -> None:
    assert split_pair(join_pair("甲", "乙")) == ("甲", "乙")
    assert split_pair("甲") == ("甲", None)
    assert join_pair("甲", " ") is None and join_pair(None, "乙") is None


def test_the_fast_path_and_the_trained_model_agree_on_pairs(tokenizers) -> None:
    ours, _ = tokenizers
    torch.manual_seed(0)
    config = scratch_config(len(ours), ["a", "b"], layers=2, hidden=32, heads=2)
    config.text_pairs, config.sep_token_id = True, ours.sep_id
    model = BertClassifier(config).eval()
    with torch.no_grad():  # make segment 1 matter
        model.bert.embeddings.token_type_embeddings.weight[1].normal_()
    enc = encode_texts(ours, [join_pair("北京新闻", "手机发布会"), join_pair("球赛", "股票")], 16, LongTextOptions())
    ids = torch.tensor([s + [0] * (12 - len(s)) for s in enc.seqs])
    mask = (ids != 0).long()
    with torch.no_grad():
        slow = model(ids, attention_mask=mask)
        explicit = model(ids, attention_mask=mask, token_type_ids=segment_ids(ids, ours.sep_id) * mask)
        fast = fast_classifier(model)(ids, attention_mask=mask)
        single = BertClassifier(scratch_config(len(ours), ["a", "b"], layers=2, hidden=32, heads=2)).eval()
    assert torch.allclose(slow, explicit, atol=1e-5) and torch.allclose(slow, fast, atol=1e-4)
    assert not getattr(single.config, "text_pairs", False)  # a single-text model ignores [SEP]s


def _rows(n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a = rng.randrange(3)
        same = rng.random() < 0.5
        b = a if same else (a + rng.randrange(1, 3)) % 3
        rows.append(("".join(rng.choice(GROUPS[a]) for _ in range(rng.randint(3, 8))),
                     "".join(rng.choice(GROUPS[b]) for _ in range(rng.randint(3, 8))), "same" if same else "diff"))
    return rows


@pytest.mark.slow
def test_pairs_train_evaluate_predict_and_api(tmp_path: Path, capsys, monkeypatch) -> None:
    for split, n, seed in (("train", 300, 1), ("dev", 60, 2)):
        with (tmp_path / f"{split}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "second", "label"])
            w.writerows(_rows(n, seed))
    (tmp_path / "test.txt").write_text("".join(f"{a}\t{b}\t{y}\n" for a, b, y in _rows(60, 3)), encoding="utf-8")
    out = tmp_path / "model"
    rc, _, err = run_main(capsys, "train", "--train", str(tmp_path / "train.csv"), "--dev", str(tmp_path / "dev.csv"),
                          "--test", str(tmp_path / "test.txt"), "--text-pair-col", "second", "--out", str(out),
                          *TINY_MODEL_ARGS, "--epochs", "12", "--lr", "5e-3", "--patience", "0", "--batch-size", "16",
                          "--no-cache", "--threads", "1",
                          "--bigrams", "0")  # this tiny pair task is seed-sensitive; bigrams: test_bigrams.py
    assert rc == 0, err
    from cls_app import Classifier

    clf = Classifier.load(out)
    assert clf.network.config.text_pairs
    same, diff, empty = clf.predict([("球赛跑跳泳", "冠泳跑跳"), ("股票基金", "手机芯片电脑"), ("球赛", "")])
    assert (same.label, diff.label, empty.label) == ("same", "diff", None)
    with pytest.raises(UserError, match="sentence pairs"):
        clf.predict(["球赛跑跳泳"])
    from cls_app.modeling.onnx_export import export_onnx

    export_onnx(out)  # the segment ids are derived inside the exported graph too
    onnx_clf = Classifier.load(out, backend="onnx")
    pairs = [("球赛跑跳泳", "冠泳跑跳"), ("股票基金", "手机芯片电脑"), ("北京", "球赛")]
    assert onnx_clf.pairs and np.abs(onnx_clf.predict_proba(pairs) - clf.predict_proba(pairs)).max() < 1e-4
    with pytest.raises(UserError, match="sentence pairs"):
        onnx_clf.predict(["球赛跑跳泳"])
    rc, stdout, _ = run_main(capsys, "predict", "--model", str(out), "--text", "球赛跑跳泳", "--text-pair", "冠泳跑跳")
    assert rc == 0 and stdout.startswith("same\t") and stdout.rstrip().endswith("球赛跑跳泳\t冠泳跑跳")
    pred = tmp_path / "pred.csv"
    assert run_main(capsys, "predict", "--model", str(out), "--input", str(tmp_path / "dev.csv"), "--output",
                    str(pred))[0] == 0
    table = pd.read_csv(pred)
    assert (table["pred_label"] == table["label"]).mean() > 0.6
    rc, stdout, _ = run_main(capsys, "evaluate", "--model", str(out), "--data", str(tmp_path / "test.txt"), "--out",
                             str(tmp_path / "ev"))
    assert rc == 0 and "accuracy=" in stdout
    rc, _, err = run_main(capsys, "predict", "--model", str(out), "--text", "球赛")
    assert rc == 2 and "--text-pair" in err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("球赛跑跳泳\t冠泳跑跳\n".encode())))
    rc, stdout, _ = run_main(capsys, "predict", "--model", str(out))  # stdin lines: text<TAB>text_b
    assert rc == 0 and stdout.startswith("same\t")
    # pair baselines: TF-IDF of A, of B, |a-b| and a*b; compare scores every model on the pairs
    bl = tmp_path / "baselines"
    rc, _, _ = run_main(capsys, "baseline", "--train", str(tmp_path / "train.csv"), "--dev", str(tmp_path / "dev.csv"),
                        "--text-pair-col", "second", "--out", str(bl), "--models", "char_lr", "majority")
    meta = json.loads((bl / "char_lr" / "baseline.json").read_text(encoding="utf-8"))
    assert rc == 0 and meta["text_pair_col"] == "second" and meta["dev"]["accuracy"] > 0.9
    rc, _, _ = run_main(capsys, "compare", "--models", str(out), str(bl), "--data", str(tmp_path / "dev.csv"),
                        "--out", str(tmp_path / "cmp"), "--bootstrap", "20")
    summary = json.loads((tmp_path / "cmp" / "comparison.json").read_text(encoding="utf-8"))
    assert rc == 0 and {m["name"]: m["accuracy"] for m in summary["models"]}["char_lr"] > 0.9


def test_pair_features_have_four_blocks() -> None:
    from cls_app.baselines.pairs import PairFeatures
    from cls_app.baselines.tfidf import CompactTfidfVectorizer

    feats = PairFeatures(CompactTfidfVectorizer(analyzer="char")).fit([join_pair("甲乙", "乙丙")])
    x = feats.transform([join_pair("甲乙", "乙丙"), "甲"]).toarray()
    n = x.shape[1] // 4
    a, b, diff, prod = x[:, :n], x[:, n:2 * n], x[:, 2 * n:3 * n], x[:, 3 * n:]
    assert np.allclose(diff, abs(a - b)) and np.allclose(prod, a * b)
    assert prod[0].sum() > 0 and not b[1].any()  # they share 乙; a single text has no B
