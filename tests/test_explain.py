"""``run.py explain``: per-character scores (Captum Integrated Gradients for BERT, n-gram
contributions for TF-IDF baselines), their completeness, the JSON/CSV/HTML outputs."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.text.tokenizer import SPECIAL_TOKENS, CharTokenizer
from tests.conftest import NEG_CHARS, POS_CHARS, TINY_MODEL_ARGS, run_main, toy_texts, write_csv

ALPHABET = list("这个好棒差烂abcXYZ 12ＡＢ１éÉ\t\n\x00!？。") + ["[MASK]", "[UNK]", "[", "]"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=25).map("".join))
def test_token_spans_built_vocab(text: str) -> None:
    tok = CharTokenizer.build(["这个好棒差abc 12 ! 。"], min_freq=1)
    ids, spans = tok.token_ids(text), tok.token_spans(text)
    assert len(spans) == len(ids)
    last = 0
    for (start, end), token in zip(spans, tok.tokenize(text), strict=True):
        assert last <= start < end <= len(text)
        last = end
        assert tok.tokenize(text[start:end]) == [token]  # the span alone gives that very token


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET + ["hello", "iphone"]), max_size=25).map("".join))
def test_token_spans_wordpiece_vocab(text: str) -> None:
    tok = CharTokenizer([*SPECIAL_TOKENS, "这", "个", "好", "hel", "##lo", "ip", "##hone", "1", "##2", "a", "!"])
    ids, spans = tok.token_ids(text), tok.token_spans(text)
    assert len(spans) == len(ids)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert spans == sorted(spans)


def _main(*args: str) -> None:
    import torch

    from cls_app.commands import main

    threads = torch.get_num_threads()
    try:
        assert main(list(args)) == 0
    finally:
        torch.set_num_threads(threads)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_token_spans_any_unicode(text: str) -> None:
    built = CharTokenizer.build(["这个好棒差abc 12 ! 。ß ﬁ"], min_freq=1)
    wordpiece = CharTokenizer([*SPECIAL_TOKENS, "这", "好", "hel", "##lo", "a", "!", "ss", "##ss", "fi"])
    for tok in (built, wordpiece):
        spans = tok.token_spans(text)
        assert len(spans) == len(tok.token_ids(text))
        assert all(0 <= s < e <= len(text) for s, e in spans)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A toy train/test CSV, TF-IDF baselines and a tiny BERT trained on it (in this process)."""
    root = tmp_path_factory.mktemp("explain")
    train = write_csv(root / "train.csv", *toy_texts(200, 1))
    test = write_csv(root / "test.csv", *toy_texts(40, 3))
    _main("-q", "baseline", "--train", str(train), "--out", str(root / "baselines"), "--models", "char_lr", "word_lr",
          "char_nb")
    _main("-q", "train", "--train", str(train), "--out", str(root / "bert"), *TINY_MODEL_ARGS, "--epochs", "4",
          "--lr", "5e-3", "--threads", "1", "--no-cache")
    return {"root": root, "train": train, "test": test, "bert": root / "bert", "lr": root / "baselines" / "char_lr",
            "word": root / "baselines" / "word_lr", "nb": root / "baselines" / "char_nb"}


@pytest.mark.parametrize("model", ["lr", "word", "nb"])
def test_linear_scores_add_up_and_point_the_right_way(toy, model) -> None:
    from cls_app.inference.explain import explainer_for
    from cls_app.models import load

    explainer = explainer_for(load(toy[model]))
    text = "这个" + POS_CHARS[:3] + NEG_CHARS[:1]
    toward = explainer.explain(text, target="正面")
    against = explainer.explain(text, target="负面")
    for e in (toward, against):
        assert e.completeness["error"] < 1e-9
        assert sum(e.char_scores) == pytest.approx(e.completeness["target_difference"], abs=1e-9)
        assert len(e.char_scores) == len(text)
    if model != "word":  # jieba may glue the toy's characters into words of mixed sentiment
        assert all(toward.char_scores[i] > 0 for i in range(2, 5))  # the positive characters
        assert toward.char_scores[5] < 0
        assert all(a < 0 for a in against.char_scores[2:5])


def test_bert_integrated_gradients_are_complete(toy) -> None:
    from cls_app.inference.explain import ExplainOptions, explainer_for
    from cls_app.models import load

    explainer = explainer_for(load(toy["bert"]), ExplainOptions(n_steps=64))
    text = "这个" + POS_CHARS[:4] + "ok!"
    e = explainer.explain(text)
    assert e.method == "integrated_gradients"
    assert e.tokens == ["这", "个", *POS_CHARS[:4], "ok", "!"]
    assert e.spans[-2] == (len(text) - 3, len(text) - 1)
    # completeness: the scores add up to logit(text) - logit(all-[PAD] baseline), up to the Riemann error
    assert e.completeness["relative_error"] < 0.05
    assert sum(e.char_scores) == pytest.approx(sum(e.token_scores), abs=1e-6)
    assert e.details["n_steps"] == 64
    assert explainer.explain(text, target="负面").target == "负面"


class _Spans(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.spans = 0
        self.scripts = 0

    def handle_starttag(self, tag, attrs) -> None:
        self.spans += tag == "span" and ("class", "ch") in attrs
        self.scripts += tag == "script"


def test_explain_cli_outputs(toy, tmp_path, capsys) -> None:
    texts = ["这个" + POS_CHARS[:3], "这个" + NEG_CHARS[:5]]
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out_json, out_csv, out_html = tmp_path / "e.json", tmp_path / "e.csv", tmp_path / "e.html"
    rc, out, err = run_main(capsys, "explain", "--model", str(toy["bert"]), "--input", str(inp), "--output",
                            str(out_json), "--n-steps", "20", "--threads", "1")
    assert rc == 0, err
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert [d["text"] for d in data] == texts
    assert all(len(d["char_scores"]) == len(d["text"]) and d["details"]["n_steps"] == 20 for d in data)
    rc, out, err = run_main(capsys, "explain", "--model", str(toy["lr"]), "--text", texts[0], "--text", texts[1],
                            "--output", str(out_csv))
    assert rc == 0, err
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert {row["text_index"] for row in rows} == {"0", "1"}
    assert all(texts[int(row["text_index"])][int(row["start"]):int(row["end"])] == row["token"] for row in rows)
    rc, out, err = run_main(capsys, "explain", "--model", str(toy["lr"]), "--text", texts[0], "--output", str(out_html))
    assert rc == 0, err
    parser = _Spans()
    parser.feed(out_html.read_text(encoding="utf-8"))
    assert parser.spans == len(texts[0]) and parser.scripts == 0
    rc, out, err = run_main(capsys, "explain", "--model", str(toy["lr"]), "--text", texts[1])  # not a TTY: no colours
    assert rc == 0 and "负面" in out and "\x1b[" not in out and "toward:" in out


@pytest.mark.parametrize("args, message", [
    (["--text", "好"], "--target '不存在' is not a class"),
    ([], "give either --text"),
    (["--text", "好", "--text", " "], "--text number 2 is empty"),
    (["--text", "好", "--output", "x.pdf"], "cannot tell the format"),
])
def test_explain_user_errors(toy, args, message, capsys) -> None:
    extra = ["--target", "不存在"] if message.startswith("--target") else []
    rc, out, err = run_main(capsys, "explain", "--model", str(toy["lr"]), *args, *extra)
    assert rc == 2 and message in err and "Traceback" not in err


def test_terminal_colours_follow_the_scores() -> None:
    from cls_app.inference.explain import Explanation, ansi_text

    e = Explanation(text="好差中", label="x", prob=1.0, target="x", method="m", tokens=["好", "差", "中"],
                    spans=[(0, 1), (1, 2), (2, 3)], token_scores=[1.0, -0.8, 0.01], char_scores=[1.0, -0.8, 0.01],
                    completeness={})
    shown = ansi_text(e)
    assert "\x1b[48;5;46m\x1b[97m好" in shown  # strongest green
    assert "\x1b[48;5;196m\x1b[97m差" in shown  # strong red
    assert shown.endswith("\x1b[0m中")  # too weak to colour
