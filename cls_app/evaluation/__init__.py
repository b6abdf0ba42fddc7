"""Results: evaluation reports (with errors, calibration, report.html), plots, the comparison of models, the
recommendation, audits."""

from ..lazy import lazy_exports

_EXPORTS = {
    "AuditOptions": "audit",
    "Candidate": "recommend",
    "CompareOptions": "compare",
    "Comparison": "compare",
    "ECE_BINS": "calibration",
    "Evaluation": "report",
    "ReportOptions": "analysis",
    "Scored": "analysis",
    "audit": "audit",
    "calibration": "calibration",
    "select": "recommend",
    "compare": "compare",
    "error_table": "errors",
    "evaluate": "report",
    "plot_confusion_matrix": "plots",
    "top_k_accuracy": "errors",
    "write_evaluation": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
