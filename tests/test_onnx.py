"""ONNX export and the ONNX Runtime backend: parity with PyTorch, the CLI, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cls_app import Classifier
from cls_app.runtime.engine import predict_text_logits

from .conftest import copy_model, run_main, toy_texts, write_csv


@pytest.fixture(scope="module")
def exported(toy_bert, tmp_path_factory) -> Path:
    """A copy of the shared tiny BERT folder (2 layers, hidden 32) with model.onnx and model.int8.onnx."""
    from cls_app.modeling.onnx_export import export_onnx

    model = copy_model(toy_bert, tmp_path_factory.mktemp("onnx"))
    export_onnx(model, quantize=True)
    return model


def held_out_texts() -> list[str]:
    """A held-out file's texts: the toy task plus long texts (chunked) and odd characters."""
    texts, _ = toy_texts(300, seed=3)
    return texts + ["这个" + "好差" * 40, "iphone12 很好用!!", "a", "这个" + "棒" * 31]


def test_onnx_logits_match_pytorch_and_int8_labels_agree(exported) -> None:
    texts = held_out_texts()
    torch_clf = Classifier.load(exported, threads=1)
    onnx_clf = Classifier.load(exported, threads=1, backend="onnx")
    int8_clf = Classifier.load(exported, threads=1, backend="onnx", quantize=True)
    assert onnx_clf.options.backend == "onnx" and onnx_clf.labels == torch_clf.labels

    def logits(clf: Classifier) -> np.ndarray:
        out = predict_text_logits(clf.module, clf.tokenizer, texts, clf.max_len, clf.long_text, 16)
        return out[:, : len(clf.labels)]  # the torch module adds the [CLS] vector (the ood detector reads it)

    ref, flt, int8 = logits(torch_clf), logits(onnx_clf), logits(int8_clf)
    assert np.abs(ref - flt).max() < 1e-4  # float: the same logits
    assert (ref.argmax(1) == int8.argmax(1)).mean() >= 0.995  # int8: the same labels
    assert np.abs(ref - int8).max() > 0  # it really is another model
    # the public API gives the same predictions, in order, empty texts kept in place
    mixed = [texts[0], "", texts[1]]
    a, b = torch_clf.predict(mixed, top_k=2), onnx_clf.predict(mixed, top_k=2)
    assert [p.label for p in a] == [p.label for p in b] and b[1].label is None
    assert abs(a[0].prob - b[0].prob) < 1e-5


def test_dynamic_axes_any_batch_and_length(exported) -> None:
    import onnx

    model = onnx.load(str(exported / "model.onnx"))
    for tensor in list(model.graph.input) + list(model.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch", tensor.name
        if tensor.name != "logits":
            assert dims[1].dim_param == "sequence", tensor.name
    clf = Classifier.load(exported, threads=1, backend="onnx", batch_size=3)
    for n in (1, 2, 7):
        texts = [("这个好" * (i + 1))[: 5 + 3 * i] for i in range(n)]
        assert len(clf.predict(texts)) == n


def test_cli_export_predict_and_evaluate_with_onnx(exported, tmp_path, capsys) -> None:
    out = tmp_path / "served"
    rc, stdout, err = run_main(capsys, "export", "--model", str(exported), "--format", "onnx", "--out", str(out))
    assert rc == 0, err
    assert "model.onnx" in stdout and {p.name for p in out.iterdir()} == {"config.json", "vocab.txt", "model.onnx"}
    texts, labels = toy_texts(30, seed=4)
    write_csv(tmp_path / "in.csv", texts, labels)
    for backend, folder in (("torch", exported), ("onnx", out)):
        rc, _, err = run_main(capsys, "predict", "--model", str(folder), "--backend", backend, "--threads", "1",
                              "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / f"{backend}.csv"))
        assert rc == 0, err
    a, b = pd.read_csv(tmp_path / "torch.csv"), pd.read_csv(tmp_path / "onnx.csv")
    assert a["pred_label"].tolist() == b["pred_label"].tolist() == labels
    assert (a["pred_prob"] - b["pred_prob"]).abs().max() < 1e-5
    rc, stdout, err = run_main(capsys, "evaluate", "--model", str(out), "--backend", "onnx", "--data",
                               str(tmp_path / "in.csv"), "--out", str(tmp_path / "eval"))
    assert rc == 0, err
    assert "accuracy" in stdout


def test_clear_errors(exported, tmp_path, capsys) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(exported, bare, ignore=shutil.ignore_patterns("*.onnx"))
    rc, _, err = run_main(capsys, "predict", "--model", str(bare), "--backend", "onnx", "--text", "好")
    assert rc == 2 and "has no model.onnx: run `python run.py export" in err
    rc, _, err = run_main(capsys, "predict", "--model", str(bare), "--backend", "onnx", "--quantize", "--text", "好")
    assert rc == 2 and "model.int8.onnx" in err and "--quantize" in err

    onnx_only = tmp_path / "onnx_only"
    rc, _, err = run_main(capsys, "export", "--model", str(exported), "--out", str(onnx_only))
    assert rc == 0, err
    rc, _, err = run_main(capsys, "predict", "--model", str(onnx_only), "--text", "好")
    assert rc == 2 and "use --backend onnx" in err

    # retrained after the export: the stale model.onnx is refused
    stale = tmp_path / "stale"
    shutil.copytree(exported, stale)
    weights = stale / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    rc, _, err = run_main(capsys, "predict", "--model", str(stale), "--backend", "onnx", "--text", "好")
    assert rc == 2 and "exported from other weights" in err

    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    rc, _, err = run_main(capsys, "predict", "--model", str(broken), "--backend", "onnx", "--text", "好")
    assert rc == 2 and "cannot load" in err and "Traceback" not in err

    bl = tmp_path / "bl"
    bl.mkdir()
    (bl / "baseline.json").write_text('{"kind": "baseline"}', encoding="utf-8")
    rc, _, err = run_main(capsys, "export", "--model", str(bl))
    assert rc == 2 and "baseline" in err


def test_serve_loads_the_backend_and_precision_asked_for(exported) -> None:
    from cls_app.service.server import load_model
    from cls_app.service.settings import ServeSettings

    clf = load_model(exported, ServeSettings(backend="onnx", quantize=True, threads=1))
    assert clf.options.backend == "onnx" and clf.options.quantize and clf.module.path.name == "model.int8.onnx"
    clf = load_model(exported, ServeSettings(quantize=True, threads=1))
    assert clf.options.backend == "torch" and clf.options.quantize


def test_textcnn_exports_and_runs_in_onnx_runtime(tmp_path, capsys) -> None:
    """A TextCNN folder exports like a BERT one; --backend onnx gives the torch probabilities and pooled vectors."""
    from cls_app import TextClassifier, load

    folder = TextClassifier(kind="textcnn", epochs=3, embed=16, filters=16, buckets=500).fit(
        *toy_texts(200, 1), dev=toy_texts(60, 2)).save(tmp_path / "cnn")
    rc, out, err = run_main(capsys, "export", "--model", str(folder), "--quantize")
    assert rc == 0, err
    assert "model.onnx" in out and "model.int8.onnx" in out
    texts = ["一" * 50, *toy_texts(30, 3)[0], "好"]  # lengths 1 to 50 in one batch: dynamic axes
    torch_model, onnx_model = load(folder), load(folder, backend="onnx")
    assert onnx_model.onnx is not None and onnx_model.network is None
    (p_torch, v_torch), (p_onnx, v_onnx) = torch_model.analyse(texts), onnx_model.analyse(texts)
    np.testing.assert_allclose(p_onnx, p_torch, atol=1e-5)
    np.testing.assert_allclose(v_onnx, v_torch, atol=1e-4)
    int8 = load(folder, backend="onnx", quantize=True)
    agree = np.mean([a.label == b.label for a, b in zip(int8.predict(texts), torch_model.predict(texts), strict=True)])
    assert agree >= 0.9

    alone = tmp_path / "alone"  # --out: classifier.json and the export, servable without the torch weights
    rc, _, err = run_main(capsys, "export", "--model", str(folder), "--out", str(alone))
    assert rc == 0, err
    assert {p.name for p in alone.iterdir()} == {"classifier.json", "model.onnx"}
    rc, out, err = run_main(capsys, "predict", "--model", str(alone), "--backend", "onnx", "--text", texts[1])
    assert rc == 0 and torch_model.predict([texts[1]])[0].label in out, err
    rc, _, err = run_main(capsys, "predict", "--model", str(folder), "--quantize", "--text", "好")
    assert rc == 2 and "add --backend onnx" in err
    rc, _, err = run_main(capsys, "predict", "--model", str(alone), "--text", "好")
    assert rc == 2 and "lacks model.safetensors" in err

    weights = folder / "model.safetensors"  # retrained after the export: refused
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    rc, _, err = run_main(capsys, "predict", "--model", str(folder), "--backend", "onnx", "--text", "好")
    assert rc == 2 and "exported from other weights" in err
