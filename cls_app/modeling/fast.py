"""An inference-only view of :class:`~cls_app.modeling.bert.BertClassifier` that computes less.

Same weights, same maths, less work per batch:

* the query, key and value projections of a layer are one fused matrix product;
* the **last layer runs only the [CLS] position** through its attention output and
  feed-forward block (the classifier reads nothing else); its keys and values still see every
  token, so the logits equal the full model's up to float rounding;
* no attention mask at all when every row of a batch has the same length (length-sorted
  batches often do); PyTorch's fused ``scaled_dot_product_attention`` otherwise;
* no output objects, hidden-state tuples or dropout modules on the way.

:func:`fast_classifier` returns the fast module for the standard BERT encoder and falls back to
the model itself for configurations it does not cover. The fast module's ``nn.Linear`` layers
are ordinary modules, so :mod:`cls_app.modeling.quantize` quantizes it like any model.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .bert import segment_ids

log = logging.getLogger(__name__)


def _fused(linears: list[nn.Linear]) -> nn.Linear:
    """One linear layer computing the given layers' outputs side by side."""
    weight = torch.cat([lin.weight.detach() for lin in linears], dim=0)
    bias = torch.cat([lin.bias.detach() for lin in linears], dim=0)
    fused = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
    return fused


class _FastLayer(nn.Module):
    """One BERT encoder layer (post-LayerNorm), optionally evaluated for the [CLS] row only."""

    def __init__(self, layer: Any, cls_only: bool) -> None:  # a transformers BertLayer
        super().__init__()
        sa = layer.attention.self
        self.heads = int(sa.num_attention_heads)
        self.head_dim = int(sa.attention_head_size)
        self.scale = float(sa.scaling)
        self.cls_only = cls_only
        if cls_only:
            self.q = _fused([sa.query])
            self.kv = _fused([sa.key, sa.value])
        else:
            self.qkv = _fused([sa.query, sa.key, sa.value])
        self.attn_out = layer.attention.output.dense
        self.attn_norm = layer.attention.output.LayerNorm
        self.ffn_in = layer.intermediate.dense
        self.act = layer.intermediate.intermediate_act_fn
        self.ffn_out = layer.output.dense
        self.ffn_norm = layer.output.LayerNorm

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, _ = x.shape
        h, d = self.heads, self.head_dim
        if self.cls_only:  # keys and values from every token, the query from [CLS] alone
            k, v = self.kv(x).view(b, t, 2, h, d).permute(2, 0, 3, 1, 4)
            x = x[:, :1]
            q = self.q(x).view(b, 1, h, d).transpose(1, 2)
        else:
            q, k, v = self.qkv(x).view(b, t, 3, h, d).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        a = a.transpose(1, 2).reshape(b, -1, h * d)
        x = self.attn_norm(self.attn_out(a) + x)
        return self.ffn_norm(self.ffn_out(self.act(self.ffn_in(x))) + x)


class FastBertClassifier(nn.Module):
    """Embeddings -> encoder layers (the last for [CLS] only) -> linear head. Inference only."""

    pos_type: torch.Tensor  # buffers (register_buffer)
    type_delta: torch.Tensor

    def __init__(self, model: Any) -> None:  # a BertClassifier
        super().__init__()
        bert = model.bert
        emb = bert.embeddings
        self.config = model.config
        self.word = emb.word_embeddings
        # token type 0 everywhere (single-text input): fold it into the position table
        self.register_buffer(
            "pos_type", (emb.position_embeddings.weight + emb.token_type_embeddings.weight[0]).detach().clone()
        )
        # sentence pairs: segment 1 adds the difference of the two token-type embeddings
        config_sep = getattr(model.config, "sep_token_id", None)
        self.sep_id: int = int(config_sep) if config_sep is not None else -1
        self.pairs = bool(getattr(model.config, "text_pairs", False)) and config_sep is not None
        if self.pairs:
            types = emb.token_type_embeddings.weight
            self.register_buffer("type_delta", (types[1] - types[0]).detach().clone())
        self.bigram = getattr(model, "bigram", None)  # character bigram embeddings, when the model has them
        self.emb_norm = emb.LayerNorm
        layers = list(bert.encoder.layer)
        self.layers = nn.ModuleList(
            _FastLayer(layer, cls_only=(i == len(layers) - 1)) for i, layer in enumerate(layers)
        )
        self.classifier = model.classifier
        # True: forward returns the logits followed by the [CLS] vector (what the out-of-domain detector reads)
        self.features = False
        self.eval()

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The embedding layer's output: token (+ bigram) + position + token-type embeddings, normalised."""
        x = self.word(input_ids)
        if self.bigram is not None:
            x = x + self.bigram(input_ids)
        x = x + self.pos_type[: input_ids.shape[1]]
        if self.pairs:
            x = x + segment_ids(input_ids, self.sep_id).unsqueeze(-1).to(x.dtype) * self.type_delta
        return self.emb_norm(x)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits ``(batch, num_labels)`` for right-padded ``input_ids`` (with :attr:`features`: then the
        final [CLS] vector, ``(batch, num_labels + hidden)``)."""
        x = self.embed(input_ids)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        logits = self.classifier(x[:, 0])
        return torch.cat([logits, x[:, 0].to(logits.dtype)], dim=1) if self.features else logits


def supports(model: nn.Module) -> str | None:
    """None when :class:`FastBertClassifier` computes exactly what ``model`` does, else why not."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "bert") or not hasattr(model, "classifier"):
        return "not a BertClassifier"
    if getattr(config, "model_type", None) != "bert":
        return f"model type {getattr(config, 'model_type', None)!r}"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return "a decoder configuration"
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return f"position embeddings of type {config.position_embedding_type!r}"
    if not getattr(config, "num_hidden_layers", 0):
        return "no encoder layers"
    return None


def fast_classifier(model: nn.Module) -> nn.Module:
    """The fast inference module for ``model``, or ``model`` itself when it is not supported."""
    reason = supports(model)
    if reason is not None:
        log.info("fast inference path not used (%s); running the model as it is", reason)
        return model.eval()
    return FastBertClassifier(model)
