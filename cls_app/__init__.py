"""cls_app: Chinese text classification with a fine-tuned BERT, offline-capable.

``from cls_app import Classifier`` gives the prediction API (:class:`cls_app.predict.Classifier`);
it is imported on first use, so ``import cls_app`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Classifier", "Prediction", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .predict import Classifier, Prediction


def __getattr__(name: str) -> Any:
    if name in ("Classifier", "Prediction"):
        from . import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'cls_app' has no attribute {name!r}")
