"""The main job top to bottom (``run.py train``, and with ``--with-baselines`` the whole comparison), and
distilling a model into a fast student (``run.py distill``), choosing texts to label (``run.py select``,
``import-labels``)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Chosen": "labeling",
    "DistillSettings": "distill",
    "Distilled": "distill",
    "JobResult": "main_job",
    "SMALL_KINDS": "main_job",
    "Splits": "main_job",
    "compare_with_baselines": "main_job",
    "choose": "labeling",
    "distill": "distill",
    "import_labels": "labeling",
    "fit_baselines": "main_job",
    "run_main_job": "main_job",
    "SelectSettings": "labeling",
    "score": "main_job",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
