"""Pre-training: masking statistics, NSP pairs, packing, a tiny run, loading the result."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from transformers import BertForMaskedLM, BertModel

from cls_app.errors import UserError
from cls_app.io.corpus import Corpus, prepare_peoples_daily, read_corpus, split_sentences, strip_pos_tags
from cls_app.modeling.bert import BertClassifier, freeze_layers, parameter_groups, scratch_config
from cls_app.modeling.electra import GENERATOR_FILE
from cls_app.text.tokenizer import CharTokenizer
from cls_app.training.pretrain import PretrainSettings, load_settings, run_pretraining
from cls_app.training.pretrain_data import (
    NSP_RANDOM,
    NSP_TRUE,
    encode_corpus,
    mask_tokens,
    nsp_pairs,
    packed_sequences,
    special_ids,
)

from .conftest import TINY_MODEL_ARGS, run_main


class _Run:
    """The CLI run in this process: ``returncode``, ``stdout``, ``stderr`` as a subprocess has them."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你"


def _random_docs(n_docs: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [["".join(rng.choice(list(CHARS), size=rng.integers(3, 15))) + "。" for _ in range(rng.integers(1, 6))]
            for _ in range(n_docs)]


def _tokenizer(docs: list[list[str]]) -> CharTokenizer:
    return CharTokenizer.build([s for d in docs for s in d])


# ----------------------------------------------------------------------------- masking


def _padded_batch(rng: np.random.Generator, tok: CharTokenizer, rows: int, width: int) -> np.ndarray:
    normal = np.arange(len(tok))[~np.isin(np.arange(len(tok)), special_ids(tok))]
    ids = np.full((rows, width), tok.pad_id, dtype=np.int64)
    for r in range(rows):
        n = int(rng.integers(3, width + 1))
        ids[r, :n] = rng.choice(normal, size=n)
        ids[r, 0], ids[r, n - 1] = tok.cls_id, tok.sep_id
        if n > 6:
            ids[r, n // 2] = tok.sep_id
    return ids


def test_masking_statistics_on_a_large_sample() -> None:
    tok = _tokenizer(_random_docs(20, 0))
    rng = np.random.default_rng(0)
    ids = _padded_batch(rng, tok, 2000, 64)
    specials = special_ids(tok)
    masked, pos, labels = mask_tokens(ids, rng, specials=specials, mask_id=tok.mask_id, vocab_size=len(tok))
    flat, mflat = ids.reshape(-1), masked.reshape(-1)
    is_special = np.isin(flat, specials)
    assert not is_special[pos].any(), "a special token was chosen"
    assert np.array_equal(labels, flat[pos])
    assert abs(len(pos) / (~is_special).sum() - 0.15) < 0.005
    unchosen = np.setdiff1d(np.arange(len(flat)), pos)
    assert np.array_equal(mflat[unchosen], flat[unchosen]), "only chosen positions may change"
    to_mask = (mflat[pos] == tok.mask_id).mean()
    kept = (mflat[pos] == flat[pos]).mean()
    replaced = 1 - to_mask - kept
    assert abs(to_mask - 0.8) < 0.01 and abs(kept - 0.1) < 0.01 and abs(replaced - 0.1) < 0.01
    randoms = mflat[pos][(mflat[pos] != tok.mask_id) & (mflat[pos] != flat[pos])]
    assert not np.isin(randoms, specials).any(), "a random replacement was a special token"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), prob=st.floats(0.05, 0.5), width=st.integers(4, 40))
def test_masking_counts_per_row_and_whole_words(seed: int, prob: float, width: int) -> None:
    tok = _tokenizer(_random_docs(5, 1))
    rng = np.random.default_rng(seed)
    ids = _padded_batch(rng, tok, 8, width)
    specials = special_ids(tok)
    starts = rng.random(ids.shape) < 0.5
    for word_starts in (None, starts):
        masked, pos, _ = mask_tokens(ids, rng, specials=specials, mask_id=tok.mask_id, vocab_size=len(tok),
                                     mlm_prob=prob, word_starts=word_starts)
        assert len(np.unique(pos)) == len(pos)
        for r in range(ids.shape[0]):
            n = int((~np.isin(ids[r], specials)).sum())
            row_pos = pos[(pos >= r * width) & (pos < (r + 1) * width)] - r * width
            assert len(row_pos) <= max(1, round(prob * n))
            if word_starts is None:
                assert len(row_pos) == max(1, round(prob * n))
            else:  # chosen tokens are whole words (or, when no word fits, the start of one)
                cand = np.flatnonzero(~np.isin(ids[r], specials))
                begins = word_starts[r, cand] | np.concatenate([[True], np.diff(cand) > 1])
                words = np.split(cand, np.flatnonzero(begins)[1:])
                chosen = set(row_pos.tolist())
                hit = [w for w in words if chosen & set(w.tolist())]
                budget = max(1, round(prob * n))
                if any(len(w) <= budget for w in words):
                    assert all(set(w.tolist()) <= chosen for w in hit), (words, row_pos)
                else:
                    assert len(hit) == 1 and row_pos.tolist() == hit[0][:budget].tolist()


# ----------------------------------------------------------------------------- NSP and packing


def test_nsp_pairs_are_half_true_and_well_formed() -> None:
    docs = _random_docs(300, 2)
    tok = _tokenizer(docs)
    enc = encode_corpus(Corpus(docs, ["x"]), tok)
    examples = nsp_pairs(enc, tok, 48, np.random.default_rng(0))
    labels = np.array([e.nsp_label for e in examples])
    assert set(labels) == {NSP_TRUE, NSP_RANDOM}
    assert abs((labels == NSP_TRUE).sum() - len(labels) / 2) <= 1
    doc_text = {tuple(np.concatenate(d).tolist()) for d in enc.docs}
    for e in examples:
        ids = e.ids.tolist()
        assert len(ids) <= 48 and ids[0] == tok.cls_id and ids[-1] == tok.sep_id
        sep = ids.index(tok.sep_id)
        a, b = ids[1:sep], ids[sep + 1 : -1]
        assert a and b and tok.sep_id not in b
        assert e.segments.tolist() == [0] * (sep + 1) + [1] * (len(b) + 1)
        if e.nsp_label == NSP_TRUE:  # B follows A inside one document
            joined = a + b
            assert any(_contains(d, joined) for d in doc_text)


def _contains(seq: tuple, sub: list) -> bool:
    n = len(sub)
    return any(list(seq[i : i + n]) == sub for i in range(len(seq) - n + 1))


def test_packed_sequences_fill_max_len_and_keep_every_token() -> None:
    docs = _random_docs(200, 3)
    tok = _tokenizer(docs)
    enc = encode_corpus(Corpus(docs, ["x"]), tok)
    seqs = packed_sequences(enc, tok, 32, np.random.default_rng(0))
    assert all(len(s.ids) == 32 for s in seqs[:-1]) and len(seqs[-1].ids) <= 32
    body = np.concatenate([s.ids[1:-1] for s in seqs])
    assert all(s.ids[0] == tok.cls_id and s.ids[-1] == tok.sep_id for s in seqs)
    assert (body == tok.sep_id).sum() == len(docs)  # one separator closing each document
    assert sorted(body[body != tok.sep_id].tolist()) == sorted(np.concatenate(
        [np.concatenate(d) for d in enc.docs]).tolist())


# ----------------------------------------------------------------------------- corpus


def test_corpus_readers(tmp_path) -> None:
    assert strip_pos_tags("迈向/v  充满/v  [中央/n  电台/n]nt  ABC/nx  123/m  。/w") == "迈向充满中央电台ABC 123。"
    assert split_sentences("他来了。“好！”她说？嗯") == ["他来了。", "“好！”", "她说？", "嗯"]
    plain = tmp_path / "plain.txt"
    plain.write_text("第一篇第一句。第二句。\n第一篇另一行\n\n第二篇。\n", encoding="utf-8")
    assert read_corpus([plain]).documents == [["第一篇第一句。", "第二句。", "第一篇另一行"], ["第二篇。"]]
    lines = tmp_path / "lines.txt"
    lines.write_text("一行一篇。\n又一篇\n", encoding="utf-8")
    assert read_corpus([lines]).documents == [["一行一篇。"], ["又一篇"]]
    labeled = tmp_path / "news.txt"
    labeled.write_text("标题一\t0\n标题二\t1\n", encoding="utf-8")
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n很好,pos\n太差,neg\n", encoding="utf-8")
    corpus = read_corpus([labeled, csv, labeled])  # a file given twice counts twice
    assert corpus.documents == [["标题一"], ["标题二"], ["很好"], ["太差"], ["标题一"], ["标题二"]]
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.txt").write_text("甲\n", encoding="utf-8")
    assert read_corpus([folder]).documents == [["甲"]]
    with pytest.raises(UserError, match="not found"):
        read_corpus([tmp_path / "missing.txt"])


# ----------------------------------------------------------------------------- runs


def _tiny_settings(corpus: list[str], **kw) -> PretrainSettings:
    base = {"layers": 1, "hidden": 32, "heads": 2, "max_len": 32, "batch_size": 16, "steps": 60, "lr": 3e-3,
            "log_every": 10, "save_every": 30, "min_freq": 1, "dropout": 0.0, "warmup_ratio": 0.1}
    base.update(kw)
    return PretrainSettings(corpus=corpus, **base)


@pytest.fixture
def toy_corpus(tmp_path):
    """Text with a skewed (Zipf) character distribution, so a short run can lower MLM loss."""
    rng = np.random.default_rng(0)
    weights = 1 / np.arange(1, len(CHARS) + 1) ** 1.5
    lines = ["".join(rng.choice(list(CHARS), size=20, p=weights / weights.sum())) + "。" for _ in range(300)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_tiny_pretrain_lowers_mlm_loss_and_loads_everywhere(tmp_path, toy_corpus, toy_files, capsys) -> None:
    out = tmp_path / "pt"
    summary = run_pretraining(_tiny_settings([str(toy_corpus)]), out, threads=1)
    assert summary["step"] == 60
    log = (out / "pretrain_log.csv").read_text().splitlines()
    header = log[0].split(",")
    losses = [float(row.split(",")[header.index("mlm_loss")]) for row in log[1:]]
    assert len(losses) == 6 and losses[-1] < losses[0] - 1.0, losses
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"]
    weights = load_file(out / "model.safetensors")
    bert = BertModel.from_pretrained(out)
    assert torch.equal(bert.embeddings.word_embeddings.weight, weights["bert.embeddings.word_embeddings.weight"])
    assert torch.equal(bert.encoder.layer[0].output.dense.weight,
                       weights["bert.encoder.layer.0.output.dense.weight"])
    mlm = BertForMaskedLM.from_pretrained(out)
    assert torch.equal(mlm.cls.predictions.transform.dense.weight, weights["cls.predictions.transform.dense.weight"])
    assert len(CharTokenizer.from_file(out)) == config["vocab_size"]

    # `train --pretrained DIR`, with layer-wise LR decay and a frozen first layer
    r = _Run(*run_main(capsys, "train", "--train", str(toy_files["train"]), "--dev", str(toy_files["dev"]),
                "--out", str(tmp_path / "ft"), "--pretrained", str(out), "--epochs", "1", "--lr", "1e-3",
                "--layer-lr-decay", "0.8", "--freeze-layers", "1", "--threads", "1"))
    assert r.returncode == 0, r.stderr
    ft = load_file(tmp_path / "ft" / "model.safetensors")
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.output.dense.weight"):
        assert torch.equal(ft[name], weights[name]), f"{name} was frozen but changed"


def test_resume_continues_exactly(tmp_path, toy_corpus) -> None:
    full = tmp_path / "full"
    run_pretraining(_tiny_settings([str(toy_corpus)], steps=12, save_every=4, log_every=4), full, threads=1)
    part = tmp_path / "part"
    settings = _tiny_settings([str(toy_corpus)], steps=12, save_every=4, log_every=4)
    first = run_pretraining(settings, part, time_limit_s=0.0, threads=1)  # stops after one step
    assert first["stopped_by"] == "time limit" and first["step"] == 1
    with pytest.raises(UserError, match="--resume"):
        run_pretraining(settings, part, threads=1)
    second = run_pretraining(settings, part, resume=True, threads=1)
    assert second["step"] == 12
    a, b = load_file(full / "model.safetensors"), load_file(part / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_pretrain_cli_with_nsp_and_wwm(tmp_path, toy_corpus, capsys) -> None:
    tagged = tmp_path / "tagged.txt"
    tagged.write_text("人民/n  日报/n  发表/v  社论/n  。/w  新年/t  好/a  。/w\n" * 40, encoding="utf-8")
    _, paragraphs, _ = prepare_peoples_daily(tmp_path / "pd.txt", tagged)
    assert paragraphs == 40
    assert (tmp_path / "pd.txt").read_text(encoding="utf-8").splitlines()[0] == "人民日报发表社论。新年好。"
    out = tmp_path / "pt"
    r = _Run(*run_main(capsys, "pretrain", "--corpus", str(tmp_path / "pd.txt"), str(toy_corpus), "--out",
                       str(out),
                "--nsp", "--wwm", "--steps", "6", "--log-every", "3", "--max-len", "24", "--batch-size", "8",
                "--threads", "1", *TINY_MODEL_ARGS))
    assert r.returncode == 0, r.stderr
    assert "nsp_acc" in r.stdout and (out / "model.safetensors").is_file()
    r = _Run(*run_main(capsys, "pretrain", "--out", str(tmp_path / "nothing")))
    assert r.returncode == 2 and "--corpus" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_electra_lowers_both_losses_resumes_exactly_and_loads_as_bert(tmp_path, toy_corpus, toy_files, capsys) -> None:
    kw = {"objective": "electra", "generator_hidden": 16, "steps": 60, "lr": 3e-3}
    out = tmp_path / "electra"
    summary = run_pretraining(_tiny_settings([str(toy_corpus)], **kw), out, threads=1)
    assert summary["step"] == 60
    rows = list(csv.DictReader((out / "pretrain_log.csv").open(encoding="utf-8")))
    gen = [float(r["mlm_loss"]) for r in rows]
    disc = [float(r["disc_loss"]) for r in rows]
    assert gen[-1] < gen[0] - 1.0, gen
    assert disc[-1] < disc[0], disc
    assert all(0 < float(r["replaced"]) <= 0.15 + 1e-6 for r in rows)  # only chosen positions change
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertModel"]
    weights = load_file(out / "model.safetensors")
    assert "discriminator_predictions.0.weight" in weights
    assert not any(k.startswith("cls.") for k in weights)  # no MLM head in the kept BERT
    bert = BertModel.from_pretrained(out)
    assert torch.equal(bert.embeddings.word_embeddings.weight, weights["bert.embeddings.word_embeddings.weight"])
    gen_weights = load_file(out / GENERATOR_FILE)
    assert "gen_bias" in gen_weights and not any(k.startswith("discriminator.") for k in gen_weights)

    # resume after a stop gives the same weights as one uninterrupted run
    settings = _tiny_settings([str(toy_corpus)], **{**kw, "steps": 8, "save_every": 4, "log_every": 4})
    run_pretraining(settings, tmp_path / "full", threads=1)
    run_pretraining(settings, tmp_path / "part", time_limit_s=0.0, threads=1)
    run_pretraining(settings, tmp_path / "part", resume=True, threads=1)
    for name in (GENERATOR_FILE, "model.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "part" / name)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)

    (tmp_path / "part" / GENERATOR_FILE).unlink()
    with pytest.raises(UserError, match="ELECTRA weights"):
        run_pretraining(settings, tmp_path / "part", resume=True, threads=1)

    r = _Run(*run_main(capsys, "train", "--train", str(toy_files["train"]), "--dev", str(toy_files["dev"]),
                "--out", str(tmp_path / "ft"), "--pretrained", str(out), "--epochs", "1", "--lr", "1e-3",
                "--threads", "1"))
    assert r.returncode == 0, r.stderr
    ft = load_file(tmp_path / "ft" / "model.safetensors")
    assert ft["bert.embeddings.word_embeddings.weight"].shape == weights["bert.embeddings.word_embeddings.weight"].shape


def test_load_settings_tolerates_other_versions(tmp_path) -> None:
    (tmp_path / "pretrain_args.json").write_text(json.dumps(
        {"settings": {"corpus": ["a.txt"], "steps": 7, "option_of_another_version": 1}}), encoding="utf-8")
    settings = load_settings(tmp_path)
    assert settings.corpus == ["a.txt"] and settings.steps == 7 and settings.objective == "mlm"
    (tmp_path / "pretrain_args.json").write_text(json.dumps({"settings": {"steps": 7}}), encoding="utf-8")
    with pytest.raises(UserError, match="lacks settings"):
        load_settings(tmp_path)


@pytest.mark.slow
def test_electra_cli_rejects_nsp(tmp_path, toy_corpus, capsys) -> None:
    r = _Run(*run_main(capsys, "pretrain", "--corpus", str(toy_corpus), "--out", str(tmp_path / "pt"),
                       "--objective", "electra", "--nsp", "--steps", "2", *TINY_MODEL_ARGS))
    assert r.returncode == 2 and "--nsp" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "pt").exists()


# ----------------------------------------------------------------------------- fine-tuning options


def test_layer_lr_decay_and_freezing() -> None:
    tok = CharTokenizer.build(["你好世界"])
    model = BertClassifier(scratch_config(len(tok), ["a", "b"], layers=3, hidden=32, heads=2))
    groups = parameter_groups(model, 0.01, lr=1.0, layer_lr_decay=0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of = {names[id(p)]: g["lr"] for g in groups for p in g["params"]}
    assert lr_of["classifier.weight"] == 1.0
    assert lr_of["bert.encoder.layer.2.output.dense.weight"] == 0.5
    assert lr_of["bert.encoder.layer.0.output.dense.weight"] == 0.125
    assert lr_of["bert.embeddings.word_embeddings.weight"] == 0.0625
    assert len(lr_of) == len(list(model.parameters()))
    frozen = freeze_layers(model, 2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert frozen > 0 and "bert.encoder.layer.2.output.dense.weight" in trainable
    assert not trainable & {"bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.output.dense.weight"}
    assert sum(len(g["params"]) for g in parameter_groups(model, 0.01)) == len(trainable)
    with pytest.raises(UserError, match="freeze-layers"):
        freeze_layers(model, 4)
