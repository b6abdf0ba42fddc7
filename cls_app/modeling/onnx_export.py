"""Export a BERT model folder to ONNX (``run.py export --format onnx``), optionally int8.

``model.onnx`` computes the same logits as :class:`~cls_app.modeling.fast.FastBertClassifier`
(fused QKV, last layer for [CLS] only) from ``input_ids`` and ``attention_mask`` (int64,
shape ``(batch, sequence)``, both axes dynamic) to ``logits`` (float32, ``(batch, labels)``).
``--quantize`` adds ``model.int8.onnx``: ONNX Runtime's dynamic int8 quantization of the
matrix products (weights int8, activations quantized per batch).

Each file records the SHA-256 of the ``model.safetensors`` it came from (ONNX metadata
``cls_app.weights_sha256``), so loading a stale export after retraining is an error rather
than silently old predictions. With ``--out DIR`` the export goes to another folder together
with ``config.json`` and ``vocab.txt``: a folder ONNX Runtime can serve without the weights.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..fileio import atomic_path
from .fast import FastBertClassifier, supports
from .folder import load_model_dir

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
OPSET = 17
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "logits"
SHA_KEY = "cls_app.weights_sha256"


class _OnnxForward(nn.Module):
    """FastBertClassifier's forward with the attention mask always applied (no data-dependent branch)."""

    def __init__(self, fast: FastBertClassifier) -> None:
        super().__init__()
        self.fast = fast

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        f = self.fast
        x = f.embed(input_ids)
        mask = attention_mask.bool()[:, None, None, :]
        for layer in f.layers:
            x = layer(x, mask)
        return f.classifier(x[:, 0])


def weights_sha256(folder: str | Path, weights: str = "model.safetensors") -> str | None:
    """SHA-256 of the folder's weights file (None when it has none)."""
    path = Path(folder) / weights
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stamp_weights(path: Path, sha: str) -> None:
    """Record ``sha`` (:func:`weights_sha256` of the source folder) in the ONNX file's metadata."""
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = SHA_KEY, sha
    onnx.save(model, str(path))


def _export_float(fast: FastBertClassifier, path: Path) -> None:
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 5, 3, 0, 0]], dtype=torch.long) % fast.word.num_embeddings
    mask = (torch.arange(5)[None, :] < torch.tensor([[5], [3]])).long()
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            OUTPUT: {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(_OnnxForward(fast).eval(), (ids, mask), str(path), dynamo=False, input_names=list(INPUTS),
                          output_names=[OUTPUT], dynamic_axes=axes, opset_version=OPSET)


def quantize_onnx(src: Path, dst: Path) -> None:
    """ONNX Runtime's dynamic int8 quantization of ``src`` (weights int8, activations per batch) into ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # ORT's quantizer logs a line per tensor on the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def export_onnx(model_dir: str | Path, out_dir: str | Path | None = None, quantize: bool = False) -> list[Path]:
    """Write ``model.onnx`` (and with ``quantize`` ``model.int8.onnx``) for a BERT folder; return the paths."""
    model_dir = Path(model_dir)
    loaded = load_model_dir(model_dir)
    reason = supports(loaded.model)
    if reason is not None:
        raise UserError(f"{model_dir}: ONNX export covers the standard BERT encoder; this model has {reason}")
    out = Path(out_dir) if out_dir else model_dir
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != model_dir.resolve():
        for name in ("config.json", "vocab.txt"):
            with atomic_path(out / name) as tmp:
                shutil.copyfile(model_dir / name, tmp)
    sha = weights_sha256(model_dir) or ""
    written = []
    with torch.inference_mode(False), torch.no_grad():
        fast = FastBertClassifier(loaded.model)
        with atomic_path(out / ONNX_FILE) as tmp:
            _export_float(fast, tmp)
            stamp_weights(tmp, sha)
    written.append(out / ONNX_FILE)
    if quantize:
        with atomic_path(out / ONNX_INT8_FILE) as tmp:
            quantize_onnx(out / ONNX_FILE, tmp)
            stamp_weights(tmp, sha)
        written.append(out / ONNX_INT8_FILE)
    log.info("exported %s to %s", model_dir, ", ".join(map(str, written)))
    return written
