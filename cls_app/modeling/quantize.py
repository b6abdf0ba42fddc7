"""Opt-in dynamic int8 quantization of a model's linear layers, for faster CPU inference.

Weights of every ``nn.Linear`` in the encoder are stored as int8 with one scale per tensor;
activations are quantized on the fly per batch (PyTorch's ``quantize_dynamic``, run by
FBGEMM/oneDNN kernels on x86). Embeddings, LayerNorms and the small classification head stay
in float32, which keeps the predicted labels close to the float model's: ``bench/predict_speed.py``
measures the agreement on the THUCNews test file, and the tests check it on a tiny model.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from ..errors import UserError

log = logging.getLogger(__name__)

KEEP_FLOAT = ("classifier",)
"""Names of linear layers left in float32 (the head is tiny and decides the label)."""


def quantize_linear_int8(model: nn.Module, keep_float: tuple[str, ...] = KEEP_FLOAT) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers (except ``keep_float``) run in int8."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:  # pragma: no cover - present in every torch this project pins
        raise UserError("--quantize needs torch.ao.quantization, which this PyTorch build lacks") from None
    names = {
        name for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.split(".")[-1] not in keep_float and name not in keep_float
    }
    if not names:
        raise UserError("--quantize found no linear layers to quantize in this model")
    engines = torch.backends.quantized.supported_engines
    if torch.backends.quantized.engine == "none" or not engines:  # pragma: no cover
        raise UserError("--quantize: this PyTorch build has no quantized CPU engine")
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, but still shipped and fast on x86
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantized = quantize_dynamic(model, qconfig_spec=names, dtype=torch.qint8, inplace=False)
    log.info("quantized %d linear layers to int8 (dynamic); kept in float32: %s", len(names), ", ".join(keep_float))
    return quantized.eval()
