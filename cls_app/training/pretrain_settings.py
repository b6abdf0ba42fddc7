"""Settings of a pre-training run (saved to ``pretrain_args.json``; a light module the CLI reads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .settings import ModelOptions

OBJECTIVES = ("mlm", "electra")
_SCRATCH = ModelOptions()  # model-size defaults shared with fine-tuning


@dataclass
class PretrainSettings:
    """Everything a pre-training run depends on (saved to ``pretrain_args.json``)."""

    corpus: list[str]
    text_col: str | None = None
    encoding: str | None = None
    vocab: str | None = None  # an existing vocab.txt (default: build from the corpus)
    min_freq: int = _SCRATCH.min_freq
    max_vocab: int = _SCRATCH.max_vocab
    layers: int = _SCRATCH.layers
    hidden: int = _SCRATCH.hidden
    heads: int = _SCRATCH.heads
    intermediate: int | None = None  # feed-forward size; None: 4 x hidden
    max_position: int = 512
    dropout: float = _SCRATCH.dropout
    max_len: int = 128
    nsp: bool = False
    wwm: bool = False
    mlm_prob: float = 0.15
    steps: int = 10000
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    seed: int = 42
    log_every: int = 50
    save_every: int = 500
    snapshot_every: int = 0
    precision: str = "fp32"  # fp32 or bf16 autocast (CPUs with AVX512-BF16/AMX, GPUs)
    objective: str = "mlm"  # mlm (BERT) or electra (replaced-token detection, see electra.py)
    generator_hidden: int | None = None  # electra: generator width (default hidden / 4)
    generator_layers: int | None = None  # electra: generator depth (default: layers)
    disc_weight: float = 50.0  # electra: weight of the discriminator loss
    extra: dict = field(default_factory=dict)
