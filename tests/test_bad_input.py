"""Every kind of bad input gives one clear ``error:`` line (file, row, what is wrong, what to do),
exit status 2, and leaves nothing behind that looks like a model.

The CLI runs in-process (``cls_app.commands.main``), exactly as ``python run.py ...`` runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cls_app.modeling.bert import BertClassifier, scratch_config
from cls_app.modeling.folder import save_model_dir
from cls_app.text.tokenizer import CharTokenizer

from .conftest import TINY_MODEL_ARGS, run_main, toy_texts, write_csv

TINY = [*TINY_MODEL_ARGS, "--epochs", "1", "--batch-size", "16"]


def _fails(capsys, *args: str) -> str:
    """Run the CLI, expect a user error; return its single line."""
    rc, out, err = run_main(capsys, *args)
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _train_fails(capsys, tmp_path: Path, train: Path, *extra: str) -> str:
    out = tmp_path / "model_out"
    line = _fails(capsys, "train", "--train", str(train), "--out", str(out), *TINY, *extra)
    assert not out.exists(), "a failed run must not leave an output folder"
    return line


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --------------------------------------------------------------------------- files


def test_missing_file(capsys, tmp_path) -> None:
    line = _train_fails(capsys, tmp_path, tmp_path / "nope.csv")
    assert "nope.csv" in line and "not found" in line and "check the path" in line


def test_empty_file(capsys, tmp_path) -> None:
    line = _train_fails(capsys, tmp_path, _write(tmp_path / "empty.csv", ""))
    assert "empty.csv" in line and "empty" in line
    line = _train_fails(capsys, tmp_path, _write(tmp_path / "header.csv", "text,label\n"))
    assert "no data rows" in line and "add rows" in line


def test_header_without_the_named_column_lists_columns(capsys, tmp_path, toy_files) -> None:
    line = _train_fails(capsys, tmp_path, toy_files["train"], "--text-col", "review")
    assert "no text column 'review'" in line and "'text', 'label'" in line and "--text-col" in line
    line = _train_fails(capsys, tmp_path, toy_files["train"], "--label-col", "sentiment")
    assert "no label column 'sentiment'" in line and "'text', 'label'" in line
    # no named column and no guessable one
    line = _train_fails(capsys, tmp_path, _write(tmp_path / "odd.csv", "a,b,c\n好,坏,x\n差,棒,y\n"))
    assert "cannot tell which column" in line and "'a', 'b', 'c'" in line


# --------------------------------------------------------------------------- bad rows


def _with_bad_rows(tmp_path: Path) -> Path:
    texts, labels = toy_texts(60, seed=5)
    texts[3] = ""  # empty text: file line 5 (header is line 1)
    labels[10] = ""  # missing label: line 12
    return write_csv(tmp_path / "bad_rows.csv", texts, labels)


def test_missing_text_or_label_is_an_error_by_default(capsys, tmp_path) -> None:
    line = _train_fails(capsys, tmp_path, _with_bad_rows(tmp_path))
    assert "bad_rows.csv, row 5" in line and "empty text" in line and "--on-bad-row skip" in line


def test_nan_text_in_jsonl_is_a_missing_text(capsys, tmp_path) -> None:
    rows = [{"text": t, "label": lab} for t, lab in zip(*toy_texts(20), strict=True)]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    body += '\n{"text": NaN, "label": "正面"}\n{"text": "好", "label": null}\n'
    path = _write(tmp_path / "nan.jsonl", body)
    line = _train_fails(capsys, tmp_path, path)
    assert "nan.jsonl, row 21" in line and "empty text" in line


def test_skipped_bad_rows_are_counted_and_reported(capsys, caplog, tmp_path) -> None:
    out = tmp_path / "m"
    rc, stdout, err = run_main(capsys, "train", "--train", str(_with_bad_rows(tmp_path)), "--out", str(out),
                               "--on-bad-row", "warn", *TINY)
    assert rc == 0, err
    assert "dropped 2 of 60 rows" in caplog.text and "row 5 (empty text)" in caplog.text
    assert "row 12 (missing label)" in caplog.text
    assert "skipped bad rows: train 2" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_rows"]["train"] == 2
    assert metrics["train_rows"] + metrics["dev_rows"] == 58


# --------------------------------------------------------------------------- labels


def test_dev_label_never_seen_in_train(capsys, tmp_path, toy_files) -> None:
    texts, labels = toy_texts(20, seed=9)
    labels[6] = "中性"  # line 8
    dev = write_csv(tmp_path / "dev_new_label.csv", texts, labels)
    line = _train_fails(capsys, tmp_path, toy_files["train"], "--dev", str(dev))
    assert "dev_new_label.csv, row 8" in line and "'中性'" in line and "never appear in the training data" in line
    assert "add training examples" in line


def test_test_label_never_seen_in_train(capsys, tmp_path, toy_files) -> None:
    texts, labels = toy_texts(20, seed=9)
    labels[0] = "中性"
    test = write_csv(tmp_path / "test_new_label.csv", texts, labels)
    line = _train_fails(capsys, tmp_path, toy_files["train"], "--test", str(test))
    assert "test_new_label.csv, row 2" in line and "'中性'" in line


def test_single_class_in_train(capsys, tmp_path) -> None:
    texts, _ = toy_texts(30)
    path = write_csv(tmp_path / "one_class.csv", texts, ["正面"] * 30)
    line = _train_fails(capsys, tmp_path, path)
    assert "one_class.csv" in line and "single class (正面)" in line and "add rows of another class" in line


def test_fewer_rows_than_a_batch_trains_with_a_warning(capsys, caplog, tmp_path) -> None:
    train = write_csv(tmp_path / "tiny.csv", *toy_texts(6, seed=1))
    dev = write_csv(tmp_path / "tiny_dev.csv", *toy_texts(4, seed=2))
    out = tmp_path / "m"
    rc, _, err = run_main(capsys, "train", "--train", str(train), "--dev", str(dev), "--out", str(out),
                          *TINY_MODEL_ARGS, "--epochs", "2", "--batch-size", "32")
    assert rc == 0, err
    assert "fewer than one batch" in caplog.text
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2


# --------------------------------------------------------------------------- CSV structure, encodings


def test_ragged_csv_row_with_extra_fields(capsys, tmp_path) -> None:
    rows = "".join(f"{t},{lab}\n" for t, lab in zip(*toy_texts(10), strict=True))
    path = _write(tmp_path / "ragged.csv", "text,label\n" + rows + "好,正面,多余\n")
    line = _train_fails(capsys, tmp_path, path)
    assert "ragged.csv, row 12" in line and "expected 2 fields" in line.lower() and "saw 3" in line
    assert "quote" in line


def test_ragged_csv_row_with_a_missing_field(capsys, tmp_path) -> None:
    rows = "".join(f"{t},{lab}\n" for t, lab in zip(*toy_texts(10), strict=True))
    path = _write(tmp_path / "short.csv", "text,label\n" + rows[: rows.index("\n") + 1] + "只有文本\n" + rows)
    line = _train_fails(capsys, tmp_path, path)
    assert "short.csv, row 3" in line and "missing label" in line


def test_unclosed_quote(capsys, tmp_path) -> None:
    rows = "".join(f"{t},{lab}\n" for t, lab in zip(*toy_texts(10), strict=True))
    path = _write(tmp_path / "quote.csv", "text,label\n" + rows + '"没有结束的引号,正面\n好,正面\n')
    line = _train_fails(capsys, tmp_path, path)
    assert "quote.csv, row 12" in line and "quoted field" in line


def test_quotes_and_embedded_newlines_are_read_as_one_row(capsys, tmp_path) -> None:
    texts, labels = toy_texts(40, seed=4)
    texts[0] = '第一行\n第二行，有"引号"和,逗号'
    path = write_csv(tmp_path / "multiline.csv", texts, labels)
    out = tmp_path / "m"
    rc, _, err = run_main(capsys, "train", "--train", str(path), "--out", str(out), *TINY)
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_rows"] + metrics["dev_rows"] == 40


def test_non_utf8_bytes(capsys, tmp_path, toy_files) -> None:
    good = toy_files["train"].read_bytes()
    path = tmp_path / "binary.csv"
    path.write_bytes(good + b"\xff\xfe\x80 broken,\x81\n")
    line = _train_fails(capsys, tmp_path, path)
    assert "binary.csv" in line and "cannot tell the text encoding" in line and "--encoding" in line
    line = _train_fails(capsys, tmp_path, path, "--encoding", "utf-8")
    assert "binary.csv, row 242" in line and "not valid utf-8" in line


def test_gbk_file_is_detected_and_trains(capsys, tmp_path) -> None:
    texts, labels = toy_texts(40, seed=6)
    path = tmp_path / "gbk.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False, encoding="gbk")
    rc, _, err = run_main(capsys, "train", "--train", str(path), "--out", str(tmp_path / "m"), *TINY)
    assert rc == 0, err


# --------------------------------------------------------------------------- settings


def test_max_len_above_position_limit(capsys, tmp_path, toy_files) -> None:
    line = _train_fails(capsys, tmp_path, toy_files["train"], "--max-len", "4096")
    assert "--max-len 4096" in line and "position limit of 512" in line


def test_out_is_a_file(capsys, tmp_path, toy_files) -> None:
    target = tmp_path / "model_out"
    target.write_text("not a folder")
    line = _fails(capsys, "train", "--train", str(toy_files["train"]), "--out", str(target), *TINY)
    assert "is a file, not a folder" in line and target.read_text() == "not a folder"


@pytest.mark.parametrize(("flags", "expected"), [
    (["--max-len", "2"], "--max-len must be at least 3"),
    (["--max-len", "64", "--long-text", "chunks", "--chunk-stride", "100"], "--chunk-stride 100"),
    (["--max-len", "64", "--truncation", "head+tail", "--head-tokens", "70"], "--head-tokens 70"),
    (["--epochs", "0"], "--epochs must be at least 1"),
])
def test_impossible_settings(capsys, tmp_path, toy_files, flags, expected) -> None:
    assert expected in _train_fails(capsys, tmp_path, toy_files["train"], *flags)


# --------------------------------------------------------------------------- model folders


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    texts, _ = toy_texts(40)
    tok = CharTokenizer.build(texts)
    model = BertClassifier(scratch_config(len(tok), ["正面", "负面"], layers=1, hidden=32, heads=2))
    return save_model_dir(model, tok, tmp_path / "model", {"max_len": 32})


def _evaluate(capsys, model: Path, data: Path) -> str:
    return _fails(capsys, "evaluate", "--model", str(model), "--data", str(data), "--out", str(model.parent / "r"))


def test_model_folder_missing_file(capsys, model_dir, toy_files) -> None:
    (model_dir / "vocab.txt").unlink()
    line = _evaluate(capsys, model_dir, toy_files["test"])
    assert "incomplete: missing vocab.txt" in line and "copy the whole folder" in line


def test_model_folder_from_a_different_version(capsys, model_dir, toy_files) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    config["cls_app"].update(format_version=7, app_version="9.9")
    (model_dir / "config.json").write_text(json.dumps(config))
    line = _evaluate(capsys, model_dir, toy_files["test"])
    assert "model format 7" in line and "retrain" in line and "9.9" in line
    del config["cls_app"]
    (model_dir / "config.json").write_text(json.dumps(config))
    assert "not written by this app" in _evaluate(capsys, model_dir, toy_files["test"])


@pytest.mark.parametrize("damage", ["truncated_weights", "garbage_config", "foreign_vocab"])
def test_model_folder_with_corrupt_files(capsys, model_dir, toy_files, damage) -> None:
    if damage == "truncated_weights":
        weights = model_dir / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
        expected = "cannot load weights"
    elif damage == "garbage_config":
        (model_dir / "config.json").write_text('{"vocab_size": 3')
        expected = "config.json is not valid JSON"
    else:
        (model_dir / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n好\n")
        expected = "vocab.txt has 6 tokens"
    line = _evaluate(capsys, model_dir, toy_files["test"])
    assert expected in line and str(model_dir) in line
    assert not (model_dir.parent / "r").exists()


def test_evaluate_label_unknown_to_the_model(capsys, model_dir, tmp_path) -> None:
    texts, labels = toy_texts(10)
    labels[4] = "中性"
    line = _evaluate(capsys, model_dir, write_csv(tmp_path / "eval.csv", texts, labels))
    assert "eval.csv, row 6" in line and "'中性'" in line and "not known to the model" in line


def test_degenerate_texts_after_training_are_answered(capsys, tmp_path) -> None:
    """Issue 39: the degenerate inputs at predict, evaluate, select and serve time: a model fitted on duplicates
    (three intents repeated) answers control characters, NUL, emoji, a 20,000-character text and texts it never
    saw with finite outputs, or one error line; the service answers JSON."""
    import json

    import numpy as np

    from cls_app import TextClassifier, load
    from cls_app.service.app import create_app
    from cls_app.service.settings import ServeSettings

    three = (["我要订机票", "查询天气", "播放音乐"] * 12, ["订票", "天气", "音乐"] * 12)
    folder = TextClassifier(kind="char_svm").fit(*three, dev=(three[0][:3], three[1][:3])).save(tmp_path / "m")
    odd = ["\x01\x02\x7f\x1b", "\x00\x00abc", "😀👎", "长" * 20_000, "完全没见过的文字", "ＦＵＬＬ全角", "a,b##c"]
    scored = load(folder).score(odd)
    assert np.isfinite(scored.probs).all() and not np.isinf(scored.ood).any()
    source = tmp_path / "odd.jsonl"
    source.write_text("".join(json.dumps({"text": t, "label": "订票"}, ensure_ascii=False) + "\n" for t in odd),
                      encoding="utf-8")
    rc, _, err = run_main(capsys, "predict", "--model", str(folder), "--input", str(source), "--output",
                          str(tmp_path / "out.jsonl"))
    assert rc == 0, err
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert [r["text"] for r in rows] == odd and all(r["pred_label"] in ("订票", "天气", "音乐") for r in rows)
    rc, _, err = run_main(capsys, "evaluate", "--model", str(folder), "--data", str(source), "--out",
                          str(tmp_path / "ev"))
    assert rc == 0, err
    rc, _, err = run_main(capsys, "select", "--model", str(folder), "--pool", str(source), "--out",
                          str(tmp_path / "sel.csv"), "--budget", "3")
    assert rc == 0, err
    from fastapi.testclient import TestClient

    with TestClient(create_app(load(folder), ServeSettings(max_wait_ms=0))) as client:
        r = client.post("/predict", json={"texts": odd[:3] + [odd[4]]})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 4
        r = client.post("/predict", json={"texts": [odd[3]]})  # over --max-chars: a JSON 422
        assert r.status_code == 422 and r.json()["error"]["code"] == "text_too_long"
