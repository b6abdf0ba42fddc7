"""Putting models to work: files of any size (and standard input) chunk by chunk, and explanations."""

from ..lazy import lazy_exports

_EXPORTS = {
    "ExplainOptions": "explain",
    "Explanation": "explain",
    "PredictSummary": "files",
    "RaySettings": "ray_batch",
    "explain_texts": "explain",
    "explainer_for": "explain",
    "merge_parts": "files",
    "output_columns": "files",
    "predict_chunks": "files",
    "predict_dataset": "ray_batch",
    "predict_file": "files",
    "read_chunks": "files",
    "stdin_chunks": "files",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
