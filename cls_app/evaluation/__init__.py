"""Results: evaluation reports (with errors, calibration, report.html), plots, the comparison of models, audits."""

from ..lazy import lazy_exports

_EXPORTS = {
    "AuditOptions": "audit",
    "ECE_BINS": "calibration",
    "ReportOptions": "analysis",
    "Scored": "analysis",
    "audit": "audit",
    "calibration": "calibration",
    "error_table": "errors",
    "top_k_accuracy": "errors",
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
