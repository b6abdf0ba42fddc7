"""Classical baselines: TF-IDF + linear models (fitting from in-memory texts), their folder format."""

from ..lazy import lazy_exports

_EXPORTS = {
    "CLASSIFIERS": "pipelines",
    "FEATURES": "pipelines",
    "TfidfSettings": "pipelines",
    "META_FILE": "storage",
    "MODEL_FILES": "storage",
    "SKOPS_FILE": "storage",
    "baseline_meta": "pipelines",
    "build_pipeline": "pipelines",
    "fit_estimator": "pipelines",
    "is_baseline_dir": "storage",
    "jieba_tokens": "pipelines",
    "label_set_scores": "pipelines",
    "load_baseline": "storage",
    "save_baseline": "storage",
    "scores_as_proba": "pipelines",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
