"""Run an exported ``model.onnx`` / ``model.int8.onnx`` with ONNX Runtime (``--backend onnx``).

:class:`OnnxLogits` stands where the torch module stands in the batched, length-sorted
inference code (``runtime.engine``): called with ``input_ids`` and ``attention_mask`` it returns
the logits, so tokenization, long-text chunking, batching and order restoring are the same
code for both backends and the outputs can be compared one to one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..modeling.onnx_export import INPUTS, ONNX_FILE, ONNX_INT8_FILE, OUTPUT, SHA_KEY, weights_sha256

log = logging.getLogger(__name__)


def onnx_path(folder: str | Path, quantize: bool = False) -> Path:
    """The exported file a folder must hold for ``--backend onnx`` (UserError when missing)."""
    folder = Path(folder)
    path = folder / (ONNX_INT8_FILE if quantize else ONNX_FILE)
    if not path.is_file():
        flag = " --quantize" if quantize else ""
        raise UserError(f"{folder} has no {path.name}: run `python run.py export --model {folder} "
                        f"--format onnx{flag}` first (or use --backend torch)")
    return path


class OnnxSession:
    """An ONNX Runtime session on the CPU, checked for its input names and for weights changed since the export."""

    def __init__(self, path: str | Path, threads: int = 1, inputs: tuple[str, ...] = INPUTS) -> None:
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - pinned in requirements.txt
            raise UserError("--backend onnx needs onnxruntime: pip install -r requirements.txt") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged or foreign file: ORT raises its own error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot load {self.path}: {first}; export it again with `run.py export`") from None
        names = [i.name for i in self.session.get_inputs()]
        if tuple(names) != inputs:
            raise UserError(f"{self.path} takes inputs {names}, not {list(inputs)}: export it with `run.py export`")
        self._check_fresh()

    def _check_fresh(self) -> None:
        """A clear error when the weights changed after the export (e.g. the folder was retrained)."""
        meta = self.session.get_modelmeta().custom_metadata_map
        stamped = meta.get(SHA_KEY)
        current = weights_sha256(self.path.parent)
        if stamped and current and stamped != current:
            raise UserError(f"{self.path} was exported from other weights than {self.path.parent}/model.safetensors "
                            "(retrained since?): run `run.py export` again")

    def run(self, outputs: tuple[str, ...], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The named outputs for the inputs in ``feeds``."""
        return list(self.session.run(list(outputs), feeds))


class OnnxLogits(OnnxSession):
    """An exported BERT with the calling convention of the torch classifier (inference only)."""

    training = False

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__(path, threads, INPUTS)

    def eval(self) -> OnnxLogits:
        return self

    def train(self, mode: bool = True) -> OnnxLogits:
        return self

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        ids = input_ids.numpy().astype(np.int64, copy=False)
        mask = np.ones_like(ids) if attention_mask is None else attention_mask.numpy().astype(np.int64, copy=False)
        (logits,) = self.run((OUTPUT,), {INPUTS[0]: ids, INPUTS[1]: mask})
        return torch.from_numpy(logits)
