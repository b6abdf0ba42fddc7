"""The main job's settings (``run.py train``): the BERT run and what ``--with-baselines`` adds around it.

One object, saved in ``training_args.json`` under ``job`` (so ``--resume`` finishes the whole job it
resumes) and rebuilt from it.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..models.base import kind_class
from ..models.ensemble import EnsembleSettings
from ..settings import setting
from ..text.script import SCRIPTS
from ..training.settings import BertSettings, TrainJob, job_from_args, training_args
from .plan import BudgetSettings
from .tuning import TuneSettings


@dataclass
class JobSettings:
    """One ``run.py train``: the BERT run (:class:`TrainJob`) and, with ``with_baselines``, the other kinds,
    their ensemble, the recommendation and the comparison."""

    run: TrainJob
    with_baselines: bool = setting(
        False, "also fit the other kinds on the same split (OUT/baselines: the TF-IDF baselines, fasttext, textcnn, "
        "...), build their ensemble with BERT (OUT/ensemble), recommend the best on dev (OUT/best.json) and write the "
        "comparison to OUT/comparison (on --test, else on dev) (default: on for the embedded default data, off "
        "otherwise)", toggle=True)
    kinds: tuple[str, ...] = setting((), "with --with-baselines: the kinds to fit (default: every kind that "
                                     "declares itself part of the main job and fits the task); bert among "
                                     "them or not", metavar="KIND")
    kind_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # --set KIND.NAME=VALUE
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    tune: TuneSettings = field(default_factory=TuneSettings)
    unlabeled: tuple[str, ...] = ()  # files of unlabeled texts the fast kinds self-train on (--unlabeled)
    script: str = setting("auto", "what every kind's features see of a text (stored in each folder, applied when "
                          "predicting): auto (fold full-width forms, then traditional to simplified with OpenCC), "
                          "t2s, s2t, or keep (as written) (default: %(default)s)", choices=SCRIPTS)
    strict: bool = setting(False, "any optional step that fails (a kind, the ensemble, a report) fails the job "
                           "(exit status 1) instead of being skipped with a warning")

    @property
    def metric(self) -> str:
        """The dev metric that picks models (``--metric``, else the task's default)."""
        return self.run.metric

    def check(self) -> JobSettings:
        self.ensemble.check()
        self.budget.check()
        self.tune.check()
        if self.budget.given and not self.with_baselines:
            raise UserError("--time-budget plans the kinds of --with-baselines; for the BERT alone give --time-limit")
        if self.kinds and not self.with_baselines:
            raise UserError("--kinds chooses the kinds of --with-baselines; add --with-baselines")
        if self.kind_settings and not self.with_baselines:
            raise UserError("--set gives settings to the kinds of --with-baselines; add --with-baselines")
        for kind in self.kind_settings:
            if kind_class(kind).settings_class is BertSettings:
                raise UserError(f"--set {kind}.NAME=VALUE: the BERT's settings are train's own flags (--layers, "
                                "--lr, ...); give those")
        return self

    def to_args(self) -> dict:
        """``training_args.json``: the run's settings and, under ``job``, the rest."""
        return {**training_args(self.run), "job": {
            "with_baselines": self.with_baselines, "kinds": list(self.kinds),
            "kind_settings": {k: {n: (list(v) if isinstance(v, tuple) else v) for n, v in s.items()}
                              for k, s in self.kind_settings.items()},
            "ensemble": asdict(self.ensemble), "budget": asdict(self.budget), "tune": asdict(self.tune),
            "unlabeled": [str(Path(p).resolve()) for p in self.unlabeled], "strict": self.strict,
            "script": self.script}}

    @classmethod
    def from_args(cls, args: dict, out: str) -> JobSettings:
        """The job ``training_args.json`` describes (older files: a BERT-only run, their ``prune`` and
        ``unlabeled`` where they kept them)."""
        run = job_from_args(args, out)
        job: dict = args["job"] if isinstance(args.get("job"), dict) else {}
        try:
            ensemble = EnsembleSettings(**job.get("ensemble", {}))
            if "ensemble" not in job and args.get("prune") is not None:
                ensemble = replace(ensemble, prune=float(args["prune"]))
            return cls(run=run, with_baselines=bool(job.get("with_baselines", False)),
                       kinds=tuple(job.get("kinds") or ()), kind_settings=dict(job.get("kind_settings") or {}),
                       ensemble=ensemble, budget=BudgetSettings(**job.get("budget", {})),
                       tune=TuneSettings(**job.get("tune", {})),
                       unlabeled=tuple(job.get("unlabeled", args.get("unlabeled")) or ()),
                       strict=bool(job.get("strict", False)), script=str(job.get("script", "keep")))
        except (TypeError, ValueError) as exc:
            raise UserError(f"{out}/training_args.json does not describe a job of this version ({exc})") from None


def parse_assignments(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--set KIND.NAME=VALUE`` items -> ``{kind: {name: value}}``; a value is a Python literal (``0.5``,
    ``(1, 3)``, ``True``, ``'tail'``) or else the text itself."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, eq, raw = item.partition("=")
        kind, dot, name = target.strip().partition(".")
        if not eq or not dot or not kind or not name:
            raise UserError(f"--set {item!r}: write KIND.NAME=VALUE, e.g. --set char_svm.C=0.5")
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        out.setdefault(kind, {})[name.strip()] = value
    return out
