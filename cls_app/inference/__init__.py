"""Prediction: one interface for every model folder, the BERT Classifier API, files of any size."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Classifier": "classifier",
    "DEFAULT_BATCH_SIZE": "defaults",
    "DEFAULT_CHUNK_ROWS": "defaults",
    "EVAL_BATCH_SIZE": "defaults",
    "LabelSetPrediction": "multilabel",
    "PredictSummary": "files",
    "Prediction": "classifier",
    "Predictor": "predictor",
    "folder_kind": "predictor",
    "folder_task": "multilabel",
    "load_predictor": "predictor",
    "model_size_bytes": "predictor",
    "predict_chunks": "files",
    "predict_file": "files",
    "prediction_columns": "files",
    "predictions_from_probs": "classifier",
    "stdin_chunks": "files",
    "train_seconds": "predictor",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
