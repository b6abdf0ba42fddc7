"""Training: settings, the fine-tuning loop (a Trainer over a TrainState), checkpoints, fine-tuning on records in
memory, and pre-training."""

from ..lazy import lazy_exports

_EXPORTS = {
    "EMBEDDED_DATA_DEFAULTS": "settings",
    "METRICS": "settings",
    "BertSettings": "settings",
    "ModelOptions": "settings",
    "ModelSize": "settings",
    "OptimizerSettings": "settings",
    "PRETRAINED_LR": "settings",
    "PretrainSettings": "pretrain_settings",
    "RunFolder": "pipeline",
    "TrainData": "trainer",
    "TrainHooks": "trainer",
    "TrainJob": "settings",
    "TrainResult": "trainer",
    "TrainSettings": "settings",
    "TrainState": "trainer",
    "TrainedBert": "pipeline",
    "Trainer": "trainer",
    "check_bert_settings": "settings",
    "run_pretraining": "pretrain",
    "train_bert": "pipeline",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
