"""Prediction: one interface for every model folder, the BERT Classifier API, files of any size, explanations."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Classifier": "classifier",
    "BEST_FILE": "predictor",
    "DEFAULT_BATCH_SIZE": "defaults",
    "DEFAULT_CHUNK_ROWS": "defaults",
    "EVAL_BATCH_SIZE": "defaults",
    "EnsemblePredictor": "ensemble",
    "EnsembleSettings": "ensemble",
    "ExplainOptions": "explain",
    "Explanation": "explain",
    "LabelSetPrediction": "multilabel",
    "build_ensemble": "ensemble",
    "follow_best": "predictor",
    "load_explainer": "explain",
    "PredictSummary": "files",
    "Prediction": "classifier",
    "Predictor": "predictor",
    "folder_kind": "predictor",
    "folder_task": "multilabel",
    "load_predictor": "predictor",
    "model_files": "predictor",
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
