"""The main job top to bottom (``run.py train``, and with ``--with-baselines`` the whole comparison)."""

from ..lazy import lazy_exports

_EXPORTS = {
    "JobResult": "main_job",
    "Splits": "main_job",
    "compare_with_baselines": "main_job",
    "fit_baselines": "main_job",
    "run_main_job": "main_job",
    "score": "main_job",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
