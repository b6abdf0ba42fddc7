"""The pieces a training run is built from: the tokenizer, the model, the encoded inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io.pairs import split_pair
from ..io.records import LabeledData
from ..modeling.bert import BertClassifier, freeze_layers, from_pretrained_encoder, scratch_config
from ..modeling.bigrams import bigram_keys
from ..runtime import distributed
from ..text.long_text import EncodedTexts, LongTextOptions, encode_texts, pool_logits
from ..text.token_cache import get_or_build
from ..text.tokenizer import CharTokenizer
from .settings import ModelOptions

log = logging.getLogger(__name__)


def build_tokenizer(opts: ModelOptions, train: LabeledData) -> CharTokenizer:
    """The pretrained model's vocab, or a character vocab built from the training texts."""
    if opts.pretrained:
        return CharTokenizer.from_file(resolve_vocab(opts.pretrained))
    tok = CharTokenizer.build(train.texts, min_freq=opts.min_freq, max_vocab=opts.max_vocab)
    log.info("built a character vocabulary of %d tokens from %d training texts", len(tok), len(train))
    return tok


def resolve_vocab(source: str) -> Path:
    """``vocab.txt`` of a pretrained BERT: from its folder, or downloaded for a hub name."""
    path = Path(source)
    if path.is_dir():
        if not (path / "vocab.txt").is_file():
            raise UserError(f"pretrained folder {path} has no vocab.txt")
        return path / "vocab.txt"
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source, "vocab.txt"))
    except Exception as exc:
        raise UserError(
            f"'{source}' is not a local folder and its vocab.txt could not be fetched from the "
            f"hub ({type(exc).__name__}); download the model with internet access first"
        ) from None


def build_model(opts: ModelOptions, tokenizer: CharTokenizer, train: LabeledData, labels: list[str]) -> BertClassifier:
    """A scratch BERT of the requested size, or a pretrained encoder with a fresh head; with
    character bigram embeddings for the bigrams of ``train`` (``opts.bigram_min_count`` > 0)."""
    if opts.pretrained:
        model = from_pretrained_encoder(opts.pretrained, labels)
        if model.config.vocab_size < len(tokenizer):
            raise UserError(
                f"{opts.pretrained}: vocab.txt has {len(tokenizer)} tokens, the model only "
                f"{model.config.vocab_size} embeddings"
            )
    else:
        config = scratch_config(
            len(tokenizer), labels, layers=opts.layers, hidden=opts.hidden, heads=opts.heads,
            intermediate=opts.intermediate, max_position=512,
            dropout=opts.dropout,
        )
        model = BertClassifier(config)
    _add_bigrams(model, opts, tokenizer, train)
    limit = model.config.max_position_embeddings
    if opts.max_len > limit:
        raise UserError(f"--max-len {opts.max_len} is above the model's position limit of {limit}")
    if opts.freeze_layers:
        frozen = freeze_layers(model, opts.freeze_layers)
        log.info("froze the embeddings and the first %d encoder layers (%.1fM parameters)",
                 opts.freeze_layers, frozen / 1e6)
    return model


def _add_bigrams(model: BertClassifier, opts: ModelOptions, tokenizer: CharTokenizer, train: LabeledData) -> None:
    min_count = opts.bigram_min_count  # checked with the other settings (training.settings.check_bert_settings)
    if min_count <= 0:
        return
    # the characters of each text (each side of a pair apart), without [CLS]/[SEP] or truncation
    seqs = (tokenizer.token_ids(part) for text in train.texts for part in split_pair(text) if part)
    keys = bigram_keys(seqs, model.config.vocab_size, min_count, opts.max_bigrams)
    if not len(keys):
        log.info("no character bigram occurs %d times in the training texts: no bigram embeddings", min_count)
        return
    model.add_bigrams(keys)
    log.info("character bigram embeddings: %d bigrams seen >= %d times (%.1fM parameters)",
             len(keys), min_count, (len(keys) + 1) * model.config.hidden_size / 1e6)


def encode(
    tokenizer: CharTokenizer, texts: list[str], max_len: int, lt: LongTextOptions, cache_dir: str | None
) -> EncodedTexts:
    """:func:`encode_texts`, through the token-id cache for truncated texts (chunks are not cached).

    Under torchrun rank 0 fills the cache while the other ranks wait, then they read it.
    """
    if cache_dir is None or lt.long_text != "truncate":
        return encode_texts(tokenizer, texts, max_len, lt)
    info = distributed.env_info()
    if info.enabled and not info.is_main:
        distributed.barrier()
    seqs = get_or_build(
        texts, tokenizer, max_len, cache_dir, settings=lt.to_settings(),
        encode=lambda batch: encode_texts(tokenizer, batch, max_len, lt).seqs,
    )
    if info.enabled and info.is_main:
        distributed.barrier()
    return EncodedTexts(seqs, None, len(texts))  # type: ignore[arg-type]


def encode_train(
    tokenizer: CharTokenizer, data: LabeledData, y: list[int], max_len: int, lt: LongTextOptions,
    cache_dir: str | None = None,
) -> tuple[list[list[int]], list[int]]:
    """Training rows: one per text, or (chunks) one per window, each with its text's label."""
    enc = encode(tokenizer, data.texts, max_len, lt, cache_dir)
    if enc.owners is None:
        return enc.seqs, y
    log.info("long texts: %d training texts make %d windows", len(data), len(enc.seqs))
    return enc.seqs, [y[i] for i in enc.owners]


def pooled_logits(
    model: torch.nn.Module, enc: EncodedTexts, pad_id: int, batch_size: int, lt: LongTextOptions,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Per-text logits; under torchrun the rows are scored by all ranks together."""
    logits = distributed.predict_sharded(model, enc.seqs, pad_id, batch_size, device)
    if enc.owners is None:
        return logits
    return pool_logits(logits, enc.owners, enc.n_texts, lt.chunk_pool)
