"""predict: row alignment, order after length sorting, chunking, quantization, CLI, bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cls_app import Classifier, Prediction
from cls_app.commands import main
from cls_app.errors import UserError
from cls_app.inference.files import predict_file
from cls_app.modeling.bert import BertClassifier, scratch_config
from cls_app.modeling.fast import FastBertClassifier, fast_classifier
from cls_app.text.batching import pad_batch

from .conftest import NEG_CHARS, POS_CHARS, run_cli, run_main, toy_texts, write_csv

LONG = "这个" + "好" * 20_000


@pytest.fixture(scope="module")
def tiny_model(toy_bert) -> str:
    """The shared 2-layer, hidden-32 model trained on the toy task (confident, so labels are stable)."""
    return str(toy_bert)


@pytest.fixture(scope="module")
def clf(tiny_model) -> Classifier:
    return Classifier.load(tiny_model, batch_size=4)


def test_precision_bf16_rounds_the_forward_pass_and_fp32_does_not(tiny_model, capsys) -> None:
    from cls_app import load

    texts, labels = toy_texts(40, seed=7)
    fp32, bf16 = load(tiny_model, precision="fp32"), load(tiny_model, precision="bf16")
    p32, p16 = fp32.predict_proba(texts), bf16.predict_proba(texts)
    assert np.array_equal(p32, load(tiny_model, precision="fp32").predict_proba(texts))
    assert not np.array_equal(p32, p16) and np.abs(p32 - p16).max() < 0.05  # rounded, not another model
    assert [p.label for p in bf16.predict(texts)] == labels
    assert fp32.describe()["precision"] == "fp32" and bf16.describe()["precision"] == "bf16"
    code, out, _ = run_main(capsys, "predict", "--model", tiny_model, "--precision", "fp32", "--text", texts[0])
    assert code == 0 and labels[0] in out
    with pytest.raises(SystemExit) as stop:  # argparse's choices
        run_main(capsys, "predict", "--model", tiny_model, "--precision", "fp16", "--text", texts[0])
    assert stop.value.code == 2 and "--precision: invalid choice: 'fp16'" in capsys.readouterr().err
    with pytest.raises(UserError, match="--precision must be one of fp32, bf16"):
        load(tiny_model, precision="fp16")


def _single(clf: Classifier, text: str) -> Prediction:
    return clf.predict([text], top_k=2)[0]


# --------------------------------------------------------------------------- Python API


def test_api_predicts_labels_and_probabilities(clf) -> None:
    texts, labels = toy_texts(40, seed=7)
    preds = clf.predict(texts)
    assert [p.label for p in preds] == labels  # the toy task is separable
    assert all(0.5 < p.prob <= 1.0 for p in preds)
    top = clf.predict(texts[:3], top_k=2)
    for p in top:
        assert len(p.top) == 2 and p.top[0] == (p.label, p.prob) and p.top[0][1] >= p.top[1][1]
        assert abs(sum(prob for _, prob in p.top) - 1.0) < 1e-5
    with pytest.raises(TypeError):
        clf.predict("a single string")


def test_api_empty_and_missing_texts_keep_their_place(clf) -> None:
    texts = ["这个好棒", None, float("nan"), "", "   ", "这个差劲", 123]
    preds = clf.predict(texts)
    assert len(preds) == len(texts)
    assert [p.label is None for p in preds] == [False, True, True, True, True, False, False]
    assert preds[0].label == _single(clf, "这个好棒").label
    assert preds[5].label == _single(clf, "这个差劲").label
    assert np.isnan(clf.predict_proba([None])).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=POS_CHARS + NEG_CHARS + "这个 ab1", min_size=0, max_size=90), min_size=1,
                max_size=30))
def test_order_preserved_after_length_sorting(clf, texts) -> None:
    """Batched, length-sorted probabilities equal each text's own, in input order."""
    together = clf.predict_proba(texts)
    alone = np.stack([clf.predict_proba([t])[0] for t in texts])
    assert np.array_equal(np.isnan(together), np.isnan(alone))
    assert np.allclose(np.nan_to_num(together), np.nan_to_num(alone), atol=1e-5)


def test_fast_model_matches_the_hugging_face_forward() -> None:
    torch.manual_seed(0)
    model = BertClassifier(scratch_config(300, ["a", "b", "c"], layers=3, hidden=48, heads=4)).eval()
    fast = fast_classifier(model)
    assert isinstance(fast, FastBertClassifier)
    gen = torch.Generator().manual_seed(1)
    for lengths in ([9, 9, 9], [40, 17, 3, 1, 0]):  # no padding (mask dropped), and padding
        seqs = [[2, *torch.randint(5, 300, (n,), generator=gen).tolist(), 3] for n in lengths]
        ids, mask = pad_batch(seqs, 0)
        with torch.inference_mode():
            expected = model(ids, attention_mask=mask)
            got = fast(ids, attention_mask=mask)
        assert torch.allclose(expected, got, atol=1e-5), (expected - got).abs().max()


def test_quantized_agrees_with_float(tiny_model) -> None:
    float_clf = Classifier.load(tiny_model)
    quant = Classifier.load(tiny_model, quantize=True)

    def quantized_layers(model: torch.nn.Module) -> int:
        return sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in model.modules())

    assert quant.options.quantize and quantized_layers(quant.module) == 4 + 5  # qkv|q+kv, attn out, ffn in, ffn out
    assert quantized_layers(float_clf.module) == 0
    texts, _ = toy_texts(400, seed=11)
    a = [p.label for p in float_clf.predict(texts)]
    b = [p.label for p in quant.predict(texts)]
    agreement = np.mean([x == y for x, y in zip(a, b, strict=True)])
    assert agreement >= 0.99, agreement


# --------------------------------------------------------------------------- files


def _mixed_csv(path) -> list[dict]:
    """A CSV with empty, whitespace, 'NA'/'NaN' strings, a short row, a long and a multi-line row."""
    rows = [
        ("1", "这个好棒", "a"), ("2", "", "b"), ("3", "NA", ""), ("4", "NaN", "NA"), ("5", LONG, "x"),
        ("6", "   ", "y"), ("7", "这个差劲\n第二行, \"引号\"", "z"), ("8", "这个糟", "nan"),
    ]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("id,review,note\n")
        for i, text, note in rows:
            quoted = '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text
            fh.write(f"{i},{quoted},{note}\n")
            if i == "5":
                fh.write("\n")  # a blank line is not a row
        fh.write("9\n")  # short row: no text, no note
        fh.write("10,这个喜爱,w\n")
    return [{"id": i, "review": t, "note": n} for i, t, n in rows] + [
        {"id": "9", "review": "", "note": ""}, {"id": "10", "review": "这个喜爱", "note": "w"}]


def test_csv_rows_stay_aligned_with_all_columns(tmp_path, clf, caplog) -> None:
    expected = _mixed_csv(tmp_path / "in.csv")
    with caplog.at_level(logging.WARNING, logger="cls_app"):
        summary = predict_file(clf, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=3, top_k=2)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(out.columns) == ["id", "review", "note", "pred_label", "pred_prob", "top2_label", "top2_prob",
                                 "abstained", "reason", "ood_score"]
    assert out[["id", "review", "note"]].to_dict("records") == expected  # every row, in order, unchanged
    assert summary.rows == 10 and summary.empty_rows == 3
    for row in out.to_dict("records"):
        if not row["review"].strip():
            assert row["pred_label"] == row["pred_prob"] == row["top2_label"] == ""
            continue
        own = _single(clf, row["review"])
        assert row["pred_label"] == own.label and abs(float(row["pred_prob"]) - own.prob) < 1e-4
        assert row["top2_label"] == own.top[1][0]
    # warnings name the file lines of the empty rows (row 7's text spans two lines; a blank line follows row 5)
    warned = [r.getMessage() for r in caplog.records if "empty text" in r.getMessage()]
    assert any("in.csv, row 3:" in m for m in warned)
    assert any("in.csv, row 8:" in m for m in warned)
    assert any("in.csv, row 12:" in m for m in warned)


def test_jsonl_nulls_missing_keys_and_numbers(tmp_path, clf) -> None:
    lines = [
        {"text": "这个好棒", "meta": {"k": [1, 2]}}, {"text": None, "n": 1}, {"other": "no text key"},
        {"text": 42}, {"text": "", "n": 2.5},
    ]
    raw = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + '\n{"text": NaN}\n\n{"text": "这个差劲"}\n'
    (tmp_path / "in.jsonl").write_text(raw, encoding="utf-8")
    predict_file(clf, tmp_path / "in.jsonl", tmp_path / "out.jsonl", chunk_rows=2)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(out) == 7
    for original, got in zip([*lines, {"text": float("nan")}, {"text": "这个差劲"}], out, strict=True):
        for key, value in original.items():
            if isinstance(value, float) and np.isnan(value):
                assert np.isnan(got[key])
            else:
                assert got[key] == value  # original values and types unchanged
    assert [o["pred_label"] is None for o in out] == [False, True, True, False, True, True, False]
    assert out[3]["pred_label"] == _single(clf, "42").label
    # JSONL -> CSV keeps nested values as JSON text
    predict_file(clf, tmp_path / "in.jsonl", tmp_path / "out.csv", chunk_rows=100)
    csv_out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert csv_out.loc[0, "meta"] == '{"k": [1, 2]}' and len(csv_out) == 7


def test_txt_keeps_every_line(tmp_path, clf) -> None:
    (tmp_path / "in.txt").write_text("这个好棒\n\n这个差劲\r\n  \n这个满意\n", encoding="gb18030")
    predict_file(clf, tmp_path / "in.txt", tmp_path / "out.tsv", chunk_rows=2)
    out = pd.read_csv(tmp_path / "out.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert out["text"].tolist() == ["这个好棒", "", "这个差劲", "  ", "这个满意"]
    assert [v == "" for v in out["pred_label"]] == [False, True, False, True, False]


@pytest.mark.parametrize(("name", "out_name"), [("in.csv", "o.csv"), ("in.jsonl", "o.jsonl"), ("in.txt", "o.tsv")])
def test_chunked_and_unchunked_give_identical_output(tmp_path, tiny_model, name, out_name) -> None:
    texts, _ = toy_texts(57, seed=5)
    texts[3], texts[20], texts[21] = "", LONG, "   "
    path = tmp_path / name
    if name.endswith(".csv"):
        pd.DataFrame({"text": texts, "i": range(len(texts))}).to_csv(path, index=False)
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    else:
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    windowed = Classifier.load(tiny_model, batch_size=4, window=16)  # 4 sort windows in 57 rows
    outputs = []
    for chunk in (1, 5, 16, 100_000):
        out = tmp_path / f"{chunk}_{out_name}"
        predict_file(windowed, path, out, chunk_rows=chunk, top_k=2)
        outputs.append(out.read_bytes())
    assert all(o == outputs[0] for o in outputs)
    # ... and the same numbers as one in-memory call with every text
    best = [None if np.isnan(row).all() else float(np.max(row)) for row in windowed.predict_proba(texts)]
    first = tmp_path / f"1_{out_name}"
    if out_name.endswith(".jsonl"):
        written = [json.loads(r)["pred_prob"] for r in first.read_text(encoding="utf-8").splitlines()]
        assert written == [None if b is None else round(b, 6) for b in best]
    else:
        table = pd.read_csv(first, sep="\t" if out_name.endswith(".tsv") else ",", dtype=str, keep_default_na=False)
        assert table["pred_prob"].tolist() == ["" if b is None else f"{b:.6f}" for b in best]


def test_file_errors(tmp_path, clf) -> None:
    write_csv(tmp_path / "in.csv", ["好"], ["a"])
    with pytest.raises(UserError, match=r"\.xlsx"):
        predict_file(clf, tmp_path / "in.csv", tmp_path / "out.xlsx")
    with pytest.raises(UserError, match="overwrite the input"):
        predict_file(clf, tmp_path / "in.csv", tmp_path / "in.csv")
    pd.DataFrame({"text": ["好"], "pred_label": ["x"]}).to_csv(tmp_path / "again.csv", index=False)
    with pytest.raises(UserError, match="already has column"):
        predict_file(clf, tmp_path / "again.csv", tmp_path / "out.csv")
    (tmp_path / "quote.csv").write_text('text,n\n好,1\n"坏,2\n好,3\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"quote\.csv, row 3: .*ends inside a quoted field"):
        predict_file(clf, tmp_path / "quote.csv", tmp_path / "out.csv")
    (tmp_path / "wide.csv").write_text("text,n\n好,1\n坏,2,3\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"wide\.csv, row 3: .*expected 2 fields"):
        predict_file(clf, tmp_path / "wide.csv", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()  # nothing half-written


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_text_and_stdin(tiny_model, capsys) -> None:
    rc, out, err = run_main(capsys, "predict", "--model", tiny_model, "--text", "这个好棒", "--text", "这个差劲糟",
                            "--top-k", "2")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    label, prob, label2, prob2, abstained, _reason, _ood, text = lines[0].split("\t")
    assert abstained in ("true", "false")
    assert (label, label2, text) == ("正面", "负面", "这个好棒") and float(prob) > float(prob2)
    assert lines[1].split("\t")[0] == "负面"

    r = run_cli("predict", "--model", tiny_model, stdin="这个满意\n\n这个退货\n")  # a real process reads stdin
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["正面", "", "负面"]
    assert "standard input, row 2: empty text" in r.stderr


def _run_main(capsys, *args: str) -> tuple[int, str]:
    code = main(["-q", *args])
    return code, capsys.readouterr().err


def test_cli_bad_input_is_one_clear_line(tmp_path, tiny_model, capsys) -> None:
    write_csv(tmp_path / "in.csv", ["好"], ["a"])
    (tmp_path / "bad.csv").write_bytes(b"text\n\xff\xfe\xff\x80\n")
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    predict = ["predict", "--model", tiny_model]
    cases = [
        ([*predict, "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv"), "--text-col", "body"],
         ["no text column 'body'", "the columns are 'text', 'label'"]),
        ([*predict, "--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "o.csv")],
         ["bad.csv", "utf-8: bad byte", "gb18030: bad byte", "--encoding"]),
        (["predict", "--model", str(broken), "--text", "好"], ["missing vocab.txt, model.safetensors"]),
        ([*predict, "--input", str(tmp_path / "in.csv")], ["--output"]),
        ([*predict, "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o.csv")], ["file not found"]),
    ]
    for args, needles in cases:
        code, err = _run_main(capsys, *args)
        assert code == 2, args
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
        for needle in needles:
            assert needle in err, (needle, err)
    assert not (tmp_path / "o.csv").exists()


def test_cli_file_round_trip(tmp_path, tiny_model, capsys) -> None:
    write_csv(tmp_path / "in.csv", ["这个好棒", "", "这个差劲"], ["x", "y", "z"])
    code = main(["-q", "predict", "--model", tiny_model, "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "out.jsonl"), "--quantize", "--threads", "1", "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "wrote 3 rows" in captured.out
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [o["pred_label"] for o in out] == ["正面", None, "负面"]
    assert [o["label"] for o in out] == ["x", "y", "z"]
