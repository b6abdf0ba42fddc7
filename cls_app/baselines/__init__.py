"""Classical baselines: TF-IDF + linear models (training), their folder format, their predictor."""

from ..lazy import lazy_exports

_EXPORTS = {
    "BASELINE_NAMES": "pipelines",
    "BaselinePredictor": "predictor",
    "META_FILE": "storage",
    "MODEL_FILE": "storage",
    "is_baseline_dir": "storage",
    "jieba_tokens": "pipelines",
    "load_baseline": "storage",
    "run_baselines": "pipelines",
    "save_baseline": "storage",
    "scores_as_proba": "pipelines",
    "train_baseline": "pipelines",
    "train_baselines": "pipelines",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
