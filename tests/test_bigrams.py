"""Character bigram embeddings: the lookup, the key list, training, the folder, the fast path and ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from cls_app.io.pairs import join_pair
from cls_app.modeling.bert import BertClassifier, freeze_layers, layer_depth, scratch_config
from cls_app.modeling.bigrams import BigramEmbedding, bigram_keys
from cls_app.modeling.fast import fast_classifier
from cls_app.modeling.folder import load_model_dir, save_model_dir
from cls_app.text.long_text import LongTextOptions, encode_texts
from cls_app.text.tokenizer import CharTokenizer

from .conftest import TINY_MODEL_ARGS, run_main, toy_texts, write_csv

VOCAB = 40


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(st.integers(0, VOCAB * VOCAB - 1), min_size=1, max_size=300),
       rows=st.lists(st.lists(st.integers(0, VOCAB - 1), min_size=2, max_size=12), min_size=1, max_size=6))
def test_the_lookup_finds_exactly_the_known_bigrams(keys: set[int], rows: list[list[int]]) -> None:
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    emb = BigramEmbedding(len(keys), 4, VOCAB)
    emb.set_keys(np.array(sorted(keys)))
    got = emb.index(ids)
    for b, row in enumerate(ids.tolist()):
        for i in range(width):
            key = row[i] * VOCAB + row[i + 1] if i + 1 < width else None
            want = sorted(keys).index(key) + 1 if key in keys else 0
            assert got[b, i].item() == want


def test_keys_keep_bigrams_seen_often_enough_and_the_most_frequent_first() -> None:
    seqs = [[1, 2, 3], [1, 2], [2, 3], [3, 1], [1, 2]]  # (1,2) x3, (2,3) x2, (3,1) x1
    assert bigram_keys(seqs, 10, 1, 100).tolist() == [12, 23, 31]
    assert bigram_keys(seqs, 10, 2, 100).tolist() == [12, 23]
    assert bigram_keys(seqs, 10, 1, 1).tolist() == [12]
    assert bigram_keys([[5], []], 10, 1, 100).tolist() == []


@pytest.fixture(scope="module")
def pair_model() -> tuple[BertClassifier, CharTokenizer, torch.Tensor, torch.Tensor]:
    """A random pair model with (non-zero) bigram vectors, and a padded batch of pairs."""
    texts = [join_pair("北京新闻发布", "手机发布会"), join_pair("球赛", "股票新闻"), join_pair("北京", "球赛北京")]
    tok = CharTokenizer.build([t.replace("\x1e", "") for t in texts])
    torch.manual_seed(0)
    config = scratch_config(len(tok), ["a", "b", "c"], layers=2, hidden=32, heads=2)
    config.text_pairs, config.sep_token_id = True, tok.sep_id
    model = BertClassifier(config)
    model.add_bigrams(bigram_keys([tok.token_ids(t) for t in texts], len(tok), 1, 100))
    with torch.no_grad():
        model.bigram.table.weight[1:].normal_()
        model.bert.embeddings.token_type_embeddings.weight[1].normal_()
        model.classifier.weight.mul_(100)  # logits of a few units, so that differences show
    enc = encode_texts(tok, texts, 16, LongTextOptions())
    width = max(map(len, enc.seqs))
    ids = torch.tensor([s + [0] * (width - len(s)) for s in enc.seqs])
    return model.eval(), tok, ids, (ids != 0).long()


def test_bigrams_change_the_logits_and_every_path_computes_the_same(pair_model, tmp_path) -> None:
    import onnxruntime as ort

    from cls_app.modeling.onnx_export import export_onnx

    model, tok, ids, mask = pair_model
    with torch.no_grad():
        want = model(ids, attention_mask=mask)
        fast = fast_classifier(model)(ids, attention_mask=mask)
        saved_table = model.bigram.table.weight.clone()
        model.bigram.table.weight.zero_()
        plain = model(ids, attention_mask=mask)
        model.bigram.table.weight.copy_(saved_table)
    assert (want - plain).abs().max() > 0.01  # the bigram vectors are used
    assert torch.allclose(want, fast, atol=1e-4)
    save_model_dir(model, tok, tmp_path, {"max_len": 16})
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["bigrams"] == len(model.bigram.keys) and config["cls_app"]["format_version"] == 2
    assert torch.equal(load_file(tmp_path / "model.safetensors")["bigram.keys"], model.bigram.keys)
    with torch.no_grad():
        assert torch.allclose(load_model_dir(tmp_path).model(ids, attention_mask=mask), want, atol=1e-5)
    export_onnx(tmp_path)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    assert np.abs(got - want.numpy()).max() < 1e-4  # bigram lookup and segment ids inside the graph


def test_bigram_vectors_are_embeddings_for_freezing_and_layer_decay(pair_model) -> None:
    model, *_ = pair_model
    assert layer_depth("bigram.table.weight", 2) == 0
    copy = BertClassifier(model.config)
    freeze_layers(copy, 1)
    assert not copy.bigram.table.weight.requires_grad


def test_a_format_1_folder_without_bigrams_still_loads(tmp_path) -> None:
    tok = CharTokenizer.build(["你好世界"])
    model = BertClassifier(scratch_config(len(tok), ["a", "b"], layers=1, hidden=16, heads=2))
    save_model_dir(model, tok, tmp_path, {"max_len": 16})
    config = json.loads((tmp_path / "config.json").read_text())
    config["cls_app"]["format_version"] = 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert load_model_dir(tmp_path).model.bigram is None


def test_train_learns_bigram_vectors_and_the_flag_turns_them_off(tmp_path, capsys) -> None:
    texts, labels = toy_texts(120)
    train = write_csv(tmp_path / "train.csv", texts, labels)
    dev = write_csv(tmp_path / "dev.csv", *toy_texts(40, 2))
    common = ["train", "--train", str(train), "--dev", str(dev), "--epochs", "2", "--lr", "2e-3",
              *TINY_MODEL_ARGS, "--max-len", "32", "--batch-size", "16"]
    assert run_main(capsys, *common, "--out", str(tmp_path / "on"), "--bigrams", "1", "--max-bigrams", "50")[0] == 0
    weights = load_file(tmp_path / "on" / "model.safetensors")
    assert len(weights["bigram.keys"]) == 50 and weights["bigram.table.weight"].shape == (51, 32)
    assert weights["bigram.table.weight"][1:].abs().sum() > 0  # trained away from zero
    assert run_main(capsys, *common, "--out", str(tmp_path / "off"), "--bigrams", "0")[0] == 0
    assert not any(k.startswith("bigram.") for k in load_file(tmp_path / "off" / "model.safetensors"))
    assert "bigrams" not in json.loads((tmp_path / "off" / "config.json").read_text())
    for flags, wanted in ((["--bigrams", "-1"], "--bigrams must be 0"), (["--max-bigrams", "0"], "--max-bigrams")):
        rc, _, err = run_main(capsys, *common, "--out", str(tmp_path / "bad"), *flags)
        assert rc == 2 and err.count("error:") == 1 and wanted in err and not (tmp_path / "bad").exists()
