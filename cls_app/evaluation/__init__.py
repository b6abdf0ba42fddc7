"""Results: evaluation reports, plots, and the significance-tested comparison of models."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Comparison": "compare",
    "Evaluation": "report",
    "compare_models": "compare",
    "evaluate_model": "report",
    "plot_confusion_matrix": "plots",
    "recommend": "recommend",
    "write_evaluation": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
