"""The classifier: a Hugging Face ``BertModel`` whose [CLS] output feeds a linear head.

``BertClassifier`` is a :class:`transformers.BertPreTrainedModel`, so ``save_pretrained`` /
``from_pretrained`` work as for any BERT, and the encoder weights of any BERT checkpoint
(``bert-base-chinese``, ``hfl/chinese-roberta-wwm-ext``, a folder written by ``run.py
pretrain`` or by ``BertForMaskedLM.save_pretrained``) load into ``self.bert``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertPreTrainedModel

from ..errors import UserError
from .bigrams import BigramEmbedding

log = logging.getLogger(__name__)


class BertClassifier(BertPreTrainedModel):
    """BERT encoder -> final hidden state of the [CLS] token -> dropout -> linear layer.

    Unlike ``BertForSequenceClassification`` there is no pooler (dense + tanh): the raw
    [CLS] hidden state goes straight to the classifier head. ``forward`` returns logits.
    With ``config.bigrams`` > 0 the model also has character bigram embeddings
    (:mod:`cls_app.modeling.bigrams`, ``self.bigram``) added to its token embeddings.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, int(config.num_labels or 2))
        self.post_init()
        self.bigram: BigramEmbedding | None = None
        if getattr(config, "bigrams", 0):
            self.bigram = BigramEmbedding(config.bigrams, config.hidden_size, config.vocab_size)

    def add_bigrams(self, keys) -> None:
        """Give the model bigram embeddings for the sorted ``keys`` (see :func:`~.bigrams.bigram_keys`),
        every vector zero, so its outputs do not change until it trains."""
        self.config.bigrams = len(keys)
        self.bigram = BigramEmbedding(len(keys), self.config.hidden_size, self.config.vocab_size)
        self.bigram.set_keys(keys)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return class logits of shape ``(batch, num_labels)``.

        A model trained on sentence pairs (``config.text_pairs``) takes its segment ids from the
        input when none are given (:func:`segment_ids`).
        """
        if token_type_ids is None and getattr(self.config, "text_pairs", False):
            token_type_ids = segment_ids(input_ids, self.config.sep_token_id)
        embeds = None
        if self.bigram is not None:
            embeds = self.bert.embeddings.word_embeddings(input_ids) + self.bigram(input_ids)
        hidden = self.bert(
            input_ids=None if embeds is not None else input_ids, inputs_embeds=embeds,
            attention_mask=attention_mask, token_type_ids=token_type_ids,
        ).last_hidden_state
        cls_state = hidden[:, 0]  # the [CLS] token's final hidden state
        return self.classifier(self.dropout(cls_state))


def segment_ids(input_ids: torch.Tensor, sep_id: int) -> torch.Tensor:
    """BERT's token type ids of ``[CLS] A [SEP] B [SEP]`` rows: 0 up to and including the first
    ``[SEP]``, 1 after it (a single text: 0 everywhere up to its ``[SEP]``; padding does not matter)."""
    is_sep = (input_ids == sep_id).long()
    return ((is_sep.cumsum(dim=1) - is_sep) > 0).long()


def label_maps(labels: list[str]) -> tuple[dict[int, str], dict[str, int]]:
    """``id2label`` and ``label2id`` for a list of label names in id order."""
    return dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}


def scratch_config(
    vocab_size: int,
    labels: list[str],
    *,
    layers: int = 4,
    hidden: int = 256,
    heads: int = 4,
    intermediate: int | None = None,
    max_position: int = 512,
    dropout: float = 0.1,
) -> BertConfig:
    """A small BERT config for training from scratch (default 4 layers, hidden 256, 4 heads)."""
    if hidden % heads:
        raise UserError(f"--hidden {hidden} must be divisible by --heads {heads}")
    id2label, label2id = label_maps(labels)
    values: dict[str, Any] = {
        "vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
        "intermediate_size": intermediate or 4 * hidden, "max_position_embeddings": max_position,
        "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout, "num_labels": len(labels),
        "id2label": id2label, "label2id": label2id,
    }
    return BertConfig(**values)


def from_pretrained_encoder(source: str, labels: list[str]) -> BertClassifier:
    """Load the encoder of any BERT checkpoint (folder or hub name) and add a fresh head."""
    id2label, label2id = label_maps(labels)
    try:
        model = BertClassifier.from_pretrained(
            source, num_labels=len(labels), id2label=id2label, label2id=label2id
        )
    except OSError as exc:  # not a folder, not reachable on the hub, or missing weights
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot load pretrained BERT '{source}': {first} "
            "(give a local folder with config.json, weights and vocab.txt, or a hub name when online)"
        ) from None
    if model.config.model_type != "bert":
        raise UserError(f"pretrained model '{source}' is a '{model.config.model_type}', not a BERT")
    return model


def layer_depth(name: str, num_layers: int) -> int:
    """Depth of a parameter for layer-wise LR decay: embeddings (bigram ones too) 0, encoder layer
    i -> i + 1, everything above the encoder (pooler, classifier head) ``num_layers + 1``."""
    if ".embeddings." in f".{name}" or name.startswith("bigram."):
        return 0
    marker = "encoder.layer."
    if marker in name:
        return int(name.split(marker, 1)[1].split(".", 1)[0]) + 1
    return num_layers + 1


def parameter_groups(
    model: Any, weight_decay: float, lr: float | None = None, layer_lr_decay: float = 1.0
) -> list[dict]:
    """AdamW parameter groups: no weight decay on biases and LayerNorm weights.

    With ``layer_lr_decay`` < 1 (and ``lr``), each group also gets its own learning rate:
    ``lr * layer_lr_decay ** (L + 1 - depth)`` (see :func:`layer_depth`), so the head trains
    at ``lr``, the top encoder layer at ``lr * decay`` and the embeddings at ``lr * decay ** (L + 1)``.
    Frozen parameters (``requires_grad=False``) are left out.
    """
    if not 0 < layer_lr_decay <= 1:
        raise UserError(f"--layer-lr-decay must be in (0, 1], got {layer_lr_decay}")
    num_layers = getattr(getattr(model, "config", None), "num_hidden_layers", 0)
    groups: dict[tuple[int, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_depth(name, num_layers) if layer_lr_decay < 1 else num_layers + 1
        no_decay = param.ndim < 2 or "LayerNorm" in name
        groups.setdefault((depth, no_decay), []).append(param)
    out = []
    for (depth, no_decay), params in sorted(groups.items()):
        group = {"params": params, "weight_decay": 0.0 if no_decay else weight_decay}
        if lr is not None and layer_lr_decay < 1:
            group["lr"] = lr * layer_lr_decay ** (num_layers + 1 - depth)
        out.append(group)
    return out


def embedding_tables(model: Any) -> list[nn.Embedding]:
    """The trainable embedding tables indexed by token: the characters' and (when present) the bigrams'.

    A batch uses a few hundred of their rows; the trainer gives them row-sparse gradients
    (``sparse=True``), so a step builds no dense gradient of the whole table
    (:class:`~cls_app.runtime.device.RowSparseAdamW` applies AdamW's update all the same).
    """
    embeddings = getattr(getattr(model, "bert", None), "embeddings", None)
    bigram = getattr(model, "bigram", None)
    tables = [getattr(embeddings, "word_embeddings", None), getattr(bigram, "table", None)]
    return [t for t in tables if isinstance(t, nn.Embedding) and t.weight.requires_grad]


def freeze_layers(model: Any, k: int) -> int:
    """Freeze the embeddings and the first ``k`` encoder layers (``k`` = 0: nothing).

    Returns the number of parameters frozen.

    Raises:
        UserError: if ``k`` is negative or above the number of encoder layers.
    """
    num_layers = model.config.num_hidden_layers
    if not 0 <= k <= num_layers:
        raise UserError(f"--freeze-layers {k} must be between 0 and the model's {num_layers} layers")
    if k == 0:
        return 0
    frozen = 0
    for name, param in model.named_parameters():
        if name.startswith(("bert.", "bigram.")) and layer_depth(name, num_layers) <= k:
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen
