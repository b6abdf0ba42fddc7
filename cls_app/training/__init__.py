"""Training: settings, the fine-tuning loop (a Trainer over a TrainState), checkpoints, the run end to end, and
pre-training."""

from ..lazy import lazy_exports

_EXPORTS = {
    "EMBEDDED_DATA_DEFAULTS": "settings",
    "METRICS": "settings",
    "ModelOptions": "settings",
    "PRETRAINED_LR": "settings",
    "PretrainSettings": "pretrain_settings",
    "TrainData": "trainer",
    "TrainHooks": "trainer",
    "TrainJob": "settings",
    "TrainOutcome": "pipeline",
    "TrainResult": "trainer",
    "TrainSettings": "settings",
    "TrainState": "trainer",
    "Trainer": "trainer",
    "check_job": "settings",
    "default": "settings",
    "fit": "trainer",
    "resume_training": "pipeline",
    "run_pretraining": "pretrain",
    "run_training": "pipeline",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
