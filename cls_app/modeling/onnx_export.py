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
from collections.abc import Callable
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


def weights_sha256(folder: str | Path) -> str | None:
    """SHA-256 of the folder's ``model.safetensors`` (None when it has none)."""
    path = Path(folder) / "model.safetensors"
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


def export_graph(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path, inputs: tuple[str, ...],
                 outputs: tuple[str, ...], axes: dict[str, dict[int, str]]) -> None:
    """``torch.onnx.export`` of ``module`` (eval mode) at :data:`OPSET` with the TorchScript exporter, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(module.eval(), example, str(path), dynamo=False, input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=axes, opset_version=OPSET)


def _export_float(fast: FastBertClassifier, path: Path) -> None:
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 5, 3, 0, 0]], dtype=torch.long) % fast.word.num_embeddings
    mask = (torch.arange(5)[None, :] < torch.tensor([[5], [3]])).long()
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            OUTPUT: {0: "batch"}}
    export_graph(_OnnxForward(fast), (ids, mask), path, INPUTS, (OUTPUT,), axes)


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


def write_exports(source: Path, out_dir: str | Path | None, copies: tuple[str, ...], quantize: bool,
                  export: Callable[[Path], None]) -> list[Path]:
    """The export files of the model folder ``source``, written into ``out_dir`` (default: ``source``).

    ``export(path)`` writes the float graph to ``model.onnx``; with ``quantize`` ``model.int8.onnx``
    follows. Each file is written atomically and stamped with :func:`weights_sha256` of ``source``;
    an ``out_dir`` elsewhere also gets the files ``copies`` names (what loading the export needs).
    """
    out = Path(out_dir) if out_dir else source
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != source.resolve():
        for name in copies:
            with atomic_path(out / name) as tmp:
                shutil.copyfile(source / name, tmp)
    sha = weights_sha256(source) or ""
    written = [out / ONNX_FILE]
    with atomic_path(written[0]) as tmp:
        export(tmp)
        stamp_weights(tmp, sha)
    if quantize:
        written.append(out / ONNX_INT8_FILE)
        with atomic_path(written[1]) as tmp:
            quantize_onnx(written[0], tmp)
            stamp_weights(tmp, sha)
    return written


def export_onnx(model_dir: str | Path, out_dir: str | Path | None = None, quantize: bool = False) -> list[Path]:
    """Write ``model.onnx`` (and with ``quantize`` ``model.int8.onnx``) for a BERT folder; return the paths."""
    model_dir = Path(model_dir)
    loaded = load_model_dir(model_dir)
    reason = supports(loaded.model)
    if reason is not None:
        raise UserError(f"{model_dir}: ONNX export covers the standard BERT encoder; this model has {reason}")
    with torch.inference_mode(False), torch.no_grad():
        fast = FastBertClassifier(loaded.model)
        written = write_exports(model_dir, out_dir, ("config.json", "vocab.txt"), quantize,
                                lambda path: _export_float(fast, path))
    log.info("exported %s to %s", model_dir, ", ".join(map(str, written)))
    return written
