"""Where the model runs: device and precision, the one CPU thread policy, torch.distributed collectives, the
batched logits engine, ONNX Runtime sessions."""

from ..lazy import lazy_exports

_EXPORTS = {
    "DistInfo": "distributed",
    "adamw": "device",
    "clip_grad_norm": "device",
    "RowSparseAdamW": "device",
    "configure_threads": "device",
    "env_info": "distributed",
    "predict_logits": "engine",
    "predict_text_logits": "engine",
    "resolve_device": "device",
    "resolve_precision": "device",
    "OnnxLogits": "onnx",
    "OnnxSession": "onnx",
    "onnx_path": "onnx",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
