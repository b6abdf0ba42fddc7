"""The model: the BERT classifier, its inference-only fast view, int8 quantization, the ELECTRA pre-training
model, the BERT model-folder format, ONNX export."""

from ..lazy import lazy_exports

_EXPORTS = {
    "BertClassifier": "bert",
    "ElectraPretrainer": "electra",
    "FolderMeta": "folder",
    "MODEL_FILES": "folder",
    "ONNX_FILE": "onnx_export",
    "ONNX_INT8_FILE": "onnx_export",
    "export_graph": "onnx_export",
    "export_onnx": "onnx_export",
    "fast_classifier": "fast",
    "load_folder_meta": "folder",
    "load_model_dir": "folder",
    "quantize_linear_int8": "quantize",
    "save_model_dir": "folder",
    "scratch_config": "bert",
    "write_exports": "onnx_export",
    "write_bert_files": "folder",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
