"""ELECTRA-style replaced-token detection (RTD) for ``run.py pretrain --objective electra``.

A small generator (a narrow BERT) fills the masked positions with tokens sampled from its
masked-LM distribution; the discriminator, the BERT we keep, reads the corrupted text and
predicts for *every* token whether it was replaced (Clark et al. 2020, "ELECTRA"). Each
sequence teaches the discriminator at all of its positions instead of the 15% an MLM learns
from, which is what makes RTD cheaper for the same accuracy.

Layout:

* the discriminator is :class:`BertDiscriminator`: ``bert`` (a plain ``BertModel``) plus a
  ``discriminator_predictions`` head; it is saved as the model folder's ``model.safetensors``,
  so the folder loads in ``BertModel.from_pretrained`` and ``run.py train --pretrained``;
* the generator shares the discriminator's token embeddings (projected down to its width and
  tied to its output layer, as in ELECTRA) and is saved beside it as ``generator.safetensors``
  (needed only to resume pre-training).

The loss is ``generator MLM loss + disc_weight * discriminator loss`` (ELECTRA's weight: 50);
the generator's samples are not back-propagated through.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel

from ..fileio import atomic_path

GENERATOR_FILE = "generator.safetensors"


class BertDiscriminator(BertPreTrainedModel):
    """BertModel + per-token "was this token replaced?" head (ELECTRA's discriminator)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        h = config.hidden_size
        self.discriminator_predictions = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, 1))
        self.post_init()


def generator_config(disc: BertConfig, hidden: int, layers: int) -> BertConfig:
    """Config of a narrow generator BERT (it reads projected shared embeddings, so its own
    word-embedding table is a 1-row placeholder)."""
    heads = max(1, hidden // 64)
    if hidden % heads:
        heads = 1
    return BertConfig(
        vocab_size=1, pad_token_id=0, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, max_position_embeddings=disc.max_position_embeddings,
        hidden_dropout_prob=disc.hidden_dropout_prob, attention_probs_dropout_prob=disc.attention_probs_dropout_prob,
        type_vocab_size=disc.type_vocab_size,
    )


class ElectraPretrainer(nn.Module):
    """Generator + discriminator trained together; ``pretrain_losses`` has the MLM model's signature."""

    never_sample: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, config: BertConfig, gen_hidden: int, gen_layers: int, disc_weight: float = 50.0,
                 never_sample: torch.Tensor | None = None) -> None:
        super().__init__()
        self.discriminator = BertDiscriminator(config)
        h = config.hidden_size
        self.gen_config = generator_config(config, gen_hidden, gen_layers)
        self.gen_project = nn.Linear(h, gen_hidden)
        self.generator = BertModel(self.gen_config, add_pooling_layer=False)
        self.gen_head = nn.Sequential(nn.Linear(gen_hidden, h), nn.GELU(), nn.LayerNorm(h, eps=config.layer_norm_eps))
        self.gen_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.disc_weight = disc_weight
        # token ids the generator may never put into the text ([PAD], [CLS], [SEP], [MASK], [UNK])
        self.register_buffer("never_sample", never_sample if never_sample is not None
                             else torch.zeros(0, dtype=torch.long), persistent=False)

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.discriminator.bert.embeddings.word_embeddings

    def generator_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         token_type_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of the generator at the flat ``positions`` only."""
        embeds = self.gen_project(self.word_embeddings(input_ids))
        hidden = self.generator(inputs_embeds=embeds, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
        gathered = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
        return self.gen_head(gathered) @ self.word_embeddings.weight.T + self.gen_bias

    def pretrain_losses(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        positions: torch.Tensor,
        labels: torch.Tensor,
        nsp_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Generator MLM loss on the masked ``positions`` + weighted RTD loss on every real token."""
        if nsp_labels is not None:
            raise ValueError("the ELECTRA objective has no next-sentence prediction")
        logits = self.generator_logits(input_ids, attention_mask, token_type_ids, positions)
        gen_loss = nn.functional.cross_entropy(logits.float(), labels)
        with torch.no_grad():
            sample_logits = logits.detach().float()
            if len(self.never_sample):
                sample_logits[:, self.never_sample] = float("-inf")
            u = torch.rand_like(sample_logits).clamp_(1e-9, 1.0 - 1e-9)
            sampled = (sample_logits - torch.log(-torch.log(u))).argmax(-1)  # Gumbel-max sampling
            corrupted = input_ids.reshape(-1).clone()
            corrupted[positions] = sampled
            corrupted = corrupted.view_as(input_ids)
            replaced = torch.zeros(input_ids.numel(), dtype=torch.float32, device=input_ids.device)
            replaced[positions] = (sampled != labels).float()
        hidden = self.discriminator.bert(input_ids=corrupted, attention_mask=attention_mask,
                                         token_type_ids=token_type_ids).last_hidden_state
        active = attention_mask.reshape(-1).bool()
        disc_logits = self.discriminator.discriminator_predictions(hidden).reshape(-1)[active].float()
        target = replaced[active]
        disc_loss = nn.functional.binary_cross_entropy_with_logits(disc_logits, target)
        return {
            "loss": gen_loss + self.disc_weight * disc_loss,
            "mlm_loss": gen_loss.detach(),
            "mlm_acc": (logits.detach().argmax(-1) == labels).float().mean(),
            "disc_loss": disc_loss.detach(),
            "disc_acc": ((disc_logits.detach() > 0).float() == target).float().mean(),
            "replaced": target.mean(),
        }

    def generator_state(self) -> dict[str, torch.Tensor]:
        """Everything but the discriminator (which is saved as the BERT folder's weights)."""
        return {k: v.contiguous() for k, v in self.state_dict().items() if not k.startswith("discriminator.")}

    def save_generator(self, out_dir: str | Path) -> None:
        with atomic_path(Path(out_dir) / GENERATOR_FILE) as tmp:
            save_file(self.generator_state(), str(tmp))

    def load_weights(self, out_dir: str | Path) -> None:
        """Restore both networks from a folder written by ``pretrain`` (for ``--resume``)."""
        out_dir = Path(out_dir)
        disc = load_file(str(out_dir / "model.safetensors"))
        self.discriminator.load_state_dict(disc, strict=True)
        gen = load_file(str(out_dir / GENERATOR_FILE))
        missing = set(self.generator_state()) - set(gen)
        if missing:
            raise ValueError(f"{out_dir / GENERATOR_FILE} lacks {sorted(missing)[:3]}")
        self.load_state_dict(gen, strict=False)
