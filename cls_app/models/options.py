"""How a model runs: threads, batch size, backend, int8 (the inference flags of every command).

A light module (no torch) that the CLI reads for its flags and defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import UserError
from ..runtime.precisions import INFERENCE_PRECISIONS
from ..settings import setting
from ..tasks.abstain import AbstainSettings
from ..text.script import SCRIPTS

DEFAULT_BATCH_SIZE = 64  # texts per forward pass for predict and the Python API (a kind may set its own)
DEFAULT_CHUNK_ROWS = 8192  # rows held in memory, and the window sorted by length, at a time
EVAL_BATCH_SIZE = 128  # texts per forward pass when a folder is scored on a labeled file (evaluate, compare)
BACKENDS = ("torch", "onnx")  # torch: the PyTorch model; onnx: the folder's exported model.onnx in ONNX Runtime


@dataclass(frozen=True)
class InferenceOptions:
    """How a loaded model predicts. BERT folders use every field; the others ignore what does not apply."""

    threads: int | None = setting(None, "torch CPU threads (default: the usable cores, split among local "
                                  "processes)")
    batch_size: int | None = setting(None, "texts per forward pass (default: the kind's: "
                                     f"{DEFAULT_BATCH_SIZE}, textcnn 256)")
    backend: str = setting(BACKENDS[0], "torch (default), or onnx: run the folder's model.onnx (with --quantize: "
                           "model.int8.onnx) in ONNX Runtime; write it first with `run.py export`", choices=BACKENDS)
    precision: str = setting(INFERENCE_PRECISIONS[0], "bert and textcnn: fp32 (default), or bf16 autocast: "
                             "1.2-2.2x the texts/s on CPUs with AVX512-BF16 or AMX (slow without), at most one "
                             "dev decision in 200-1,003 changed on the bench sets (docs/speed.md)",
                             choices=INFERENCE_PRECISIONS)
    quantize: bool = setting(False, "dynamic int8 quantization of the linear layers: faster on CPU, labels may "
                             "differ on a few texts (with --backend onnx: the exported model.int8.onnx)")
    script: str | None = setting(None, "what the model's features see of a text: auto (fold full-width forms, then "
                                 "traditional to simplified), t2s, s2t, keep (as written) (default: as the model "
                                 "was trained; folders from before this setting: keep)", choices=SCRIPTS)
    window: int = setting(DEFAULT_CHUNK_ROWS, "rows read, sorted by length and written at a time; bounds memory "
                          "(default: %(default)s)", flag="--chunk-size")
    long_text: dict | None = setting(None, cli=False)  # overrides of the folder's long-text settings
    progress: bool = setting(False, cli=False)  # a progress bar while predicting (the CLI's choice)
    fast: bool = setting(True, cli=False)  # BERT: the fused inference module (False: the model as trained)
    abstain: AbstainSettings | None = setting(None, cli=False)  # another abstention rule than the folder's

    def check(self) -> InferenceOptions:
        """Reject impossible values (a :class:`UserError` naming the flag)."""
        if self.backend not in BACKENDS:
            raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.precision not in INFERENCE_PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(INFERENCE_PRECISIONS)}, got {self.precision!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.window < 1:
            raise UserError(f"--chunk-size must be at least 1, got {self.window}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        if self.abstain is not None:
            self.abstain.check()
        if self.script is not None and self.script not in SCRIPTS:
            raise UserError(f"--script must be one of {', '.join(SCRIPTS)}, got {self.script!r}")
        return self

    def updated(self, **changes: Any) -> InferenceOptions:
        """A copy with ``changes`` (None values ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
