"""The main job top to bottom (``run.py train``, and with ``--with-baselines`` the whole comparison), and
distilling a model into a fast student (``run.py distill``), choosing texts to label (``run.py select``,
``import-labels``)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Chosen": "labeling",
    "DistillSettings": "distill",
    "Distilled": "distill",
    "BudgetSettings": "plan",
    "Deadline": "plan",
    "JobResult": "main_job",
    "JobSettings": "settings",
    "Splits": "main_job",
    "make_plan": "plan",
    "choose": "labeling",
    "distill": "distill",
    "import_labels": "labeling",
    "fit_kind": "main_job",
    "run_main_job": "main_job",
    "SelectSettings": "labeling",
    "load_resume_job": "resume",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
