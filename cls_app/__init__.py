"""cls_app: Chinese text classification with a fine-tuned BERT and classical baselines, offline-capable.

>>> import cls_app
>>> clf = cls_app.load("saved_models/default")        # the model `predict --model` uses   # doctest: +SKIP
>>> clf.predict(["这家酒店太差了"])                                                        # doctest: +SKIP
>>> cls_app.TextClassifier(kind="char_svm").fit(texts, labels)                              # doctest: +SKIP

Everything is imported on first use, so ``import cls_app`` stays light. The package is layered,
each subpackage importing only from those below it (docs/architecture.md).
"""

from __future__ import annotations

from .lazy import lazy_exports
from .version import __version__

__all__ = ["Classifier", "LabelSetPrediction", "Prediction", "TextClassifier", "UserError", "__version__", "clone",
           "load", "predict_dataset", "register"]
__getattr__ = lazy_exports(__name__, {
    "TextClassifier": "models.base", "Classifier": "models.base", "load": "models.base",
    "clone": "models.base", "register": "models.base",
    "predict_dataset": "inference.ray_batch",
    "Prediction": "tasks.base", "LabelSetPrediction": "tasks.base", "UserError": "errors",
})
