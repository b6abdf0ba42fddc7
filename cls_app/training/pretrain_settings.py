"""Settings of a pre-training run (saved to ``pretrain_args.json``; a light module the CLI reads).

The model size and the optimizer are the fine-tuning ones (:class:`~.settings.ModelSize`,
:class:`~.settings.OptimizerSettings`), with the defaults pre-training changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import setting
from .settings import ModelSize, OptimizerSettings

OBJECTIVES = ("mlm", "electra")


@dataclass(kw_only=True)
class PretrainSettings(ModelSize, OptimizerSettings):
    """Everything a pre-training run depends on (saved to ``pretrain_args.json``)."""

    corpus: list[str] = setting(cli=False)
    text_col: str | None = setting(None, "text column of CSV/TSV/JSONL corpus files")
    encoding: str | None = setting(None, "corpus encoding (default: detect)")
    vocab: str | None = setting(None, "use this vocab.txt instead of building one from the corpus")
    max_position: int = setting(512, "position embeddings (max fine-tune length; default: %(default)s)")
    max_len: int = setting(128, "tokens per packed sequence incl. [CLS]/[SEP]")
    nsp: bool = setting(False, "add next-sentence prediction (sentence pairs)")
    wwm: bool = setting(False, "whole-word masking (words from jieba)")
    mlm_prob: float = setting(0.15, "share of tokens chosen for prediction")
    steps: int = setting(10000, "(default: %(default)s)")
    batch_size: int = setting(64, "(default: %(default)s)")
    lr: float = setting(5e-4, "(default: %(default)s)")
    warmup_ratio: float = setting(0.06, "(default: %(default)s)")
    log_every: int = setting(50, "(default: %(default)s)")
    save_every: int = setting(500, "save model and resumable state every N steps")
    snapshot_every: int = setting(0, "also keep a model copy in OUT/snapshots/step-N every N steps (0: off)")
    precision: str = setting("fp32", "bf16 autocast: faster on CPUs with AVX512-BF16/AMX (measure it first)",
                             choices=("fp32", "bf16"))
    objective: str = setting("mlm", "mlm: BERT masked LM; electra: a small generator fills the masks and the BERT "
                             "learns to spot replaced tokens at every position (better per FLOP in the ELECTRA "
                             "paper; not within minutes on a CPU, see docs/pretraining.md)", choices=OBJECTIVES)
    generator_hidden: int | None = setting(None, "electra: generator width (default hidden / 4)")
    generator_layers: int | None = setting(None, "electra: generator depth (default --layers)")
    disc_weight: float = setting(50.0, "electra: weight of the discriminator loss")
    extra: dict = field(default_factory=dict)
