"""cls_app: Chinese text classification with a fine-tuned BERT and classical baselines, offline-capable.

``from cls_app import Classifier`` gives the prediction API
(:class:`cls_app.inference.classifier.Classifier`); it is imported on first use, so
``import cls_app`` stays light. The package is layered, each subpackage importing only from
those below it: io -> text -> modeling -> runtime -> training | baselines -> inference ->
evaluation -> commands (README: Layout).
"""

from __future__ import annotations

from .lazy import lazy_exports
from .version import __version__

__all__ = ["Classifier", "Prediction", "__version__"]
__getattr__ = lazy_exports(__name__, {"Classifier": "inference.classifier", "Prediction": "inference.classifier"})
