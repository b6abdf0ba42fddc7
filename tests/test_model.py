"""The classifier learns a separable task; saved folders reload with identical logits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForMaskedLM

from cls_app.errors import UserError
from cls_app.modeling.bert import BertClassifier, from_pretrained_encoder, parameter_groups, scratch_config
from cls_app.modeling.folder import load_model_dir, save_model_dir
from cls_app.runtime.engine import predict_logits
from cls_app.text.tokenizer import CharTokenizer
from cls_app.training.settings import TrainSettings
from cls_app.training.trainer import TrainData, Trainer

from .conftest import toy_texts


def _tiny(tok: CharTokenizer, labels: list[str]) -> BertClassifier:
    torch.manual_seed(0)
    return BertClassifier(scratch_config(len(tok), labels, layers=1, hidden=32, heads=2))


def test_cls_head_reads_only_the_cls_position() -> None:
    tok = CharTokenizer.build(["你好世界"])
    model = _tiny(tok, ["a", "b"]).eval()
    hidden = {}

    def keep(module, inputs, output) -> None:
        hidden["h"] = output.last_hidden_state

    model.bert.register_forward_hook(keep)
    ids = torch.tensor([tok.encode("你好世界")])
    logits = model(ids)
    expected = model.classifier(hidden["h"][:, 0])
    assert torch.allclose(logits, expected)


def test_tiny_model_learns_separable_task() -> None:
    texts, labels = toy_texts(240, seed=1)
    dev_texts, dev_labels = toy_texts(60, seed=2)
    names = ["正面", "负面"]
    tok = CharTokenizer.build(texts)
    model = _tiny(tok, names)
    y = [names.index(x) for x in labels]
    dev_y = [names.index(x) for x in dev_labels]
    ids, dev_ids = tok.encode_batch(texts, 32), tok.encode_batch(dev_texts, 32)
    before = (predict_logits(model, dev_ids, tok.pad_id).argmax(1) == np.array(dev_y)).mean()
    data = TrainData(ids, y, dev_ids, dev_y, names, tok.pad_id)
    result = Trainer(model, data, TrainSettings(epochs=6, batch_size=16, lr=2e-3, patience=0, seed=0)).run()
    after = (predict_logits(model, dev_ids, tok.pad_id).argmax(1) == np.array(dev_y)).mean()
    assert result.steps == 6 * 15
    assert after >= 0.95, (before, after, result.history)
    assert result.best_dev["accuracy"] == pytest.approx(after)


def test_training_is_deterministic_with_seed() -> None:
    texts, labels = toy_texts(64, seed=1)
    names = ["正面", "负面"]
    tok = CharTokenizer.build(texts)
    y = [names.index(x) for x in labels]
    ids = tok.encode_batch(texts, 32)
    runs = []
    for _ in range(2):
        model = _tiny(tok, names)
        data = TrainData(ids, y, ids, y, names, tok.pad_id)
        Trainer(model, data, TrainSettings(epochs=1, batch_size=8, seed=3)).run()
        runs.append(predict_logits(model, ids, tok.pad_id))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_saved_folder_reloads_with_identical_logits(tmp_path) -> None:
    texts, _ = toy_texts(20)
    tok = CharTokenizer.build(texts)
    model = _tiny(tok, ["正面", "负面"]).eval()
    save_model_dir(model, tok, tmp_path / "m", {"max_len": 64})
    assert {"config.json", "vocab.txt", "model.safetensors"} <= {p.name for p in (tmp_path / "m").iterdir()}
    assert not any(p.suffix in {".bin", ".pt", ".pkl"} for p in (tmp_path / "m").iterdir())
    load_file(tmp_path / "m" / "model.safetensors")  # real safetensors
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.labels == ["正面", "负面"] and loaded.max_len == 64
    ids = tok.encode_batch(texts, 64)
    np.testing.assert_array_equal(
        predict_logits(model, ids, tok.pad_id), predict_logits(loaded.model, ids, tok.pad_id)
    )


def test_load_model_dir_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_model_dir(tmp_path / "nope")
    tok = CharTokenizer.build(["你好"])
    save_model_dir(_tiny(tok, ["a", "b"]), tok, tmp_path / "m", {"max_len": 16})
    (tmp_path / "m" / "vocab.txt").unlink()
    with pytest.raises(UserError, match="missing vocab.txt"):
        load_model_dir(tmp_path / "m")
    tok.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["cls_app"]["format_version"] = 999
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="format"):
        load_model_dir(tmp_path / "m")
    config["cls_app"]["format_version"] = 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot load weights"):
        load_model_dir(tmp_path / "m")


def test_encoder_loads_from_a_transformers_checkpoint(tmp_path) -> None:
    """A checkpoint written by transformers itself (BertForMaskedLM) loads into the encoder."""
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    torch.manual_seed(0)
    mlm = BertForMaskedLM(config)
    mlm.save_pretrained(tmp_path / "mlm")
    model = from_pretrained_encoder(str(tmp_path / "mlm"), ["x", "y", "z"])
    assert model.config.num_labels == 3 and model.config.id2label[2] == "z"
    for name, tensor in mlm.bert.state_dict().items():
        if name in model.bert.state_dict():
            assert torch.equal(tensor, model.bert.state_dict()[name]), name


def test_pretrained_missing_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="cannot load pretrained"):
        from_pretrained_encoder(str(tmp_path / "no_such_model"), ["a", "b"])


def test_no_weight_decay_on_bias_and_layernorm() -> None:
    tok = CharTokenizer.build(["你好"])
    model = _tiny(tok, ["a", "b"])
    decay, no_decay = parameter_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert any("LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
