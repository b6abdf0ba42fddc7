"""The model: the BERT classifier, its inference-only fast view, int8 quantization, the ELECTRA pre-training
model, the BERT model-folder format."""

from ..lazy import lazy_exports

_EXPORTS = {
    "BertClassifier": "bert",
    "ElectraPretrainer": "electra",
    "MODEL_FILES": "folder",
    "fast_classifier": "fast",
    "load_model_dir": "folder",
    "quantize_linear_int8": "quantize",
    "save_model_dir": "folder",
    "scratch_config": "bert",
    "write_bert_files": "folder",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
