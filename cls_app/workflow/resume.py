"""``run.py train --resume DIR``: the killed job in DIR, continued where it can be.

The job is rebuilt from ``DIR/training_args.json`` (the whole job: the BERT run and, with
``--with-baselines``, the kinds, their settings, the budget). A BERT with a checkpoint continues from
it; a BERT that had finished is loaded as it is; the other kinds (seconds to minutes) are fitted
again, then the ensemble, the recommendation and the comparison. A job that finished (its
``job.json``, or a plain run's ``metrics.json``) is not run again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..training.checkpoint import find_checkpoint
from .settings import JobSettings

JOB_FILE = "job.json"


def job_finished(out: Path) -> bool:
    """The job in ``out`` ran to its end."""
    try:
        return bool(json.loads((out / JOB_FILE).read_text(encoding="utf-8")).get("finished"))
    except (OSError, ValueError, AttributeError):
        return False


def load_resume_job(out: str | Path, threads: int | None = None) -> JobSettings:
    """The :class:`JobSettings` of the killed job in ``out``, to continue it (a :class:`UserError` when there is
    nothing to continue)."""
    out = Path(out)
    args_file = out / "training_args.json"
    if not args_file.is_file():
        raise UserError(f"{out}: no training_args.json here, so nothing to resume; check the folder given to --resume")
    try:
        args = json.loads(args_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{args_file}: cannot read ({exc}); start the run again without --resume") from None
    job = JobSettings.from_args(args, str(out))
    if find_checkpoint(out) is None:
        bert_done = (out / "metrics.json").is_file()
        if job_finished(out) or (bert_done and not job.with_baselines):
            raise UserError(f"{out}: no checkpoint to resume from (the run finished: "
                            f"{JOB_FILE if job_finished(out) else 'metrics.json'} is there); start it again without "
                            "--resume")
        if not bert_done and not job.with_baselines:
            raise UserError(f"{out}: no checkpoint to resume from (the run stopped before its first save); start "
                            "it again without --resume")
    if threads:
        job.run.bert.threads = threads
    return job
