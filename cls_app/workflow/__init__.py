"""The main job top to bottom (``run.py train``, and with ``--with-baselines`` the whole comparison), and
distilling a model into a fast student (``run.py distill``)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "DistillSettings": "distill",
    "Distilled": "distill",
    "JobResult": "main_job",
    "SMALL_KINDS": "main_job",
    "Splits": "main_job",
    "compare_with_baselines": "main_job",
    "distill": "distill",
    "fit_baselines": "main_job",
    "run_main_job": "main_job",
    "score": "main_job",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
