"""Models: one interface (:class:`TextClassifier`) for every model kind, and the one loader.

Kinds: ``bert`` (:mod:`.bert`), the TF-IDF baselines (:mod:`.tfidf`), the majority floor
(:mod:`.majority`), fastText (:mod:`.fast_text`), TextCNN (:mod:`.textcnn`), ``ensemble``
(:mod:`.ensemble`), each registering itself with :mod:`.base`; :func:`load` (in :mod:`.base`)
reads any model folder, :mod:`.folders` knows the folders without loading them, :mod:`.options`
holds the inference options.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "BEST_FILE": "folders",
    "DEFAULT_BATCH_SIZE": "options",
    "DEFAULT_CHUNK_ROWS": "options",
    "EVAL_BATCH_SIZE": "options",
    "BACKENDS": "options",
    "BertTextClassifier": "bert",
    "DevScores": "ensemble",
    "EnsembleClassifier": "ensemble",
    "EnsembleSettings": "ensemble",
    "InferenceOptions": "options",
    "KINDS": "base",
    "SmallKind": "described",
    "ModelScores": "base",
    "TextClassifier": "base",
    "TfidfClassifier": "tfidf",
    "folder_family": "folders",
    "folder_settings": "folders",
    "folder_task": "folders",
    "folder_text_pair_col": "folders",
    "follow_best": "folders",
    "all_kinds": "base",
    "clone": "base",
    "kind_class": "base",
    "load": "base",
    "load_folder": "base",
    "model_files": "folders",
    "model_names": "base",
    "register": "base",
    "score_timed": "base",
    "model_size_bytes": "folders",
    "options_from": "base",
    "train_seconds": "folders",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
