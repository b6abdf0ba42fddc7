"""Drift: is a batch of new texts (a file, a prediction log, the service's last texts) still like the dev rows
the model was checked on?

Each signal compares the batch's :class:`~cls_app.models.reference.WindowStats` with the folder's
:class:`~cls_app.models.reference.Reference` (both samples: the tests are two-sample tests, so the
reference's own sampling noise counts too):

* ``ood_tail`` -- the share of texts whose out-of-domain score is above the reference's 95th percentile
  (a two-by-two chi-square test): new topics and junk land there first;
* ``ood`` -- the whole out-of-domain score distribution (two-sample Kolmogorov-Smirnov);
* ``labels`` -- the predicted-label mix (chi-square test of homogeneity; the population stability index,
  PSI, is reported beside it);
* ``length`` -- text lengths (Kolmogorov-Smirnov);
* ``script`` -- the simplified / traditional / mixed / none mix (chi-square);
* ``unknown_chars`` -- the share of texts holding a character the training texts never had (chi-square).

A signal drifts when its p-value is below ``alpha`` divided by the number of signals tested (Bonferroni),
so that on batches drawn like the reference the verdict is a false alarm at most ``alpha`` of the time
(:data:`DEFAULT_ALPHA`: 5 %); the batch drifts when any signal does. Batches under :data:`MIN_TEXTS`
texts get no verdict. ``bench/drift.py`` measures the detection rate and the false alarms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from ..models.reference import Reference, WindowStats, predicted_labels
from ..settings import setting

__all__ = ["DEFAULT_ALPHA", "MIN_TEXTS", "DriftOptions", "DriftReport", "Signal", "compare", "psi", "stats_of_records",
           "window_of"]

DEFAULT_ALPHA = 0.05
MIN_TEXTS = 100
TAIL_QUANTILE = 0.95


@dataclass(frozen=True)
class DriftOptions:
    """``run.py drift``'s settings."""

    reference: str | None = setting(None, "a file of texts to take as the reference instead of the folder's (folders "
                                    "from before drift references, or another baseline period)", metavar="FILE")
    alpha: float = setting(DEFAULT_ALPHA, "false-alarm rate of the whole verdict on data like the reference (split "
                           "among the signals; default: %(default)s)")
    every: int | None = setting(None, "also a verdict for every N texts in order, a window each (the overall verdict "
                                "covers them all)", metavar="N")

    def check(self) -> DriftOptions:
        if not 0 < self.alpha < 1:
            raise UserError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.every is not None and self.every < 1:
            raise UserError(f"--every must be at least 1, got {self.every}")
        return self


@dataclass
class Signal:
    """One comparison: its statistic, p-value, whether it drifts, and the figures behind it."""

    name: str
    statistic: float
    p_value: float
    drift: bool
    detail: dict = field(default_factory=dict)


@dataclass
class DriftReport:
    """The verdict on one batch."""

    texts: int
    alpha: float
    signals: list[Signal]
    reason: str | None = None  # why there is no verdict (too few texts)

    @property
    def drift(self) -> bool:
        return any(s.drift for s in self.signals)

    @property
    def drifting(self) -> list[str]:
        return [s.name for s in self.signals if s.drift]

    def to_json(self) -> dict:
        return {"texts": self.texts, "alpha": self.alpha, "drift": self.drift, "drifting": self.drifting,
                **({"reason": self.reason} if self.reason else {}),
                "signals": {s.name: {k: _round(v) for k, v in asdict(s).items() if k != "name"} for s in self.signals}}


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return value if not math.isfinite(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = 1e-4) -> float:
    """Population stability index of two count (or share) vectors over the same bins."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.clip(e / max(e.sum(), 1e-12), floor, None)
    a = np.clip(a / max(a.sum(), 1e-12), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _contingency(reference: Sequence[float], batch: Sequence[float]) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors (bins empty in both dropped): (statistic, p)."""
    from scipy.stats import chi2_contingency

    table = np.array([reference, batch], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    stat, p, _, _ = chi2_contingency(table, correction=table.shape[1] == 2)
    return float(stat), float(p)


def _ks(reference: Sequence[float], batch: Sequence[float]) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    if len(reference) < 2 or len(batch) < 2:
        return 0.0, 1.0
    result = ks_2samp(np.asarray(reference, dtype=float), np.asarray(batch, dtype=float))
    return float(result.statistic), float(result.pvalue)


def compare(reference: Reference, batch: WindowStats, alpha: float = DEFAULT_ALPHA) -> DriftReport:
    """The verdict of every signal the reference and the batch both allow (module docstring)."""
    ref = reference.stats
    if batch.texts < MIN_TEXTS:
        return DriftReport(batch.texts, alpha, [], f"{batch.texts} texts; a verdict needs at least {MIN_TEXTS}")
    tests: list[tuple[str, float, float, dict]] = []
    if len(ref.ood) >= MIN_TEXTS and len(batch.ood) >= MIN_TEXTS:
        cut = float(np.quantile(ref.ood, TAIL_QUANTILE))
        ref_over = int(np.sum(np.asarray(ref.ood) > cut))
        over = int(np.sum(np.asarray(batch.ood) > cut))
        stat, p = _contingency([len(ref.ood) - ref_over, ref_over], [len(batch.ood) - over, over])
        tests.append(("ood_tail", stat, p, {"threshold": cut, "reference_share": ref_over / len(ref.ood),
                                            "share": over / len(batch.ood)}))
        stat, p = _ks(ref.ood, batch.ood)
        tests.append(("ood", stat, p, {"reference_median": float(np.median(ref.ood)),
                                       "median": float(np.median(batch.ood))}))
    names = list(dict.fromkeys([*reference.labels, *ref.labels, *batch.labels]))
    if names:
        r = [ref.labels.get(n, 0) for n in names]
        b = [batch.labels.get(n, 0) for n in names]
        stat, p = _contingency(r, b)
        total_r, total_b = max(sum(r), 1), max(sum(b), 1)
        tests.append(("labels", stat, p, {"psi": psi(r, b), "reference": {n: c / total_r for n, c in zip(names, r,
                                                                                                      strict=True)},
                                          "batch": {n: c / total_b for n, c in zip(names, b, strict=True)}}))
    stat, p = _ks(ref.lengths, batch.lengths)
    tests.append(("length", stat, p, {"reference_median": float(np.median(ref.lengths)) if ref.lengths else 0.0,
                                      "median": float(np.median(batch.lengths))}))
    scripts = list(dict.fromkeys([*ref.scripts, *batch.scripts]))
    stat, p = _contingency([ref.scripts.get(s, 0) for s in scripts], [batch.scripts.get(s, 0) for s in scripts])
    tests.append(("script", stat, p, {"reference": _shares(ref.scripts), "batch": _shares(batch.scripts)}))
    if reference.chars and ref.unknown is not None and batch.unknown is not None:
        stat, p = _contingency([ref.texts - ref.unknown, ref.unknown], [batch.texts - batch.unknown, batch.unknown])
        tests.append(("unknown_chars", stat, p, {"reference_share": ref.unknown / max(ref.texts, 1),
                                                 "share": batch.unknown / max(batch.texts, 1)}))
    level = alpha / len(tests)
    return DriftReport(batch.texts, alpha, [Signal(n, s, p, p < level, d) for n, s, p, d in tests])


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = max(sum(counts.values()), 1)
    return {k: v / total for k, v in counts.items()}


def stats_of_records(records: Sequence[dict]) -> WindowStats:
    """The figures of prediction-log records (:mod:`cls_app.inference.prediction_log`)."""
    from collections import Counter

    labels: Counter[str] = Counter()
    for r in records:
        labels.update(r.get("labels") or ([r["label"]] if r.get("label") else []))
    scripts = Counter(str(r.get("script", "none")) for r in records)
    flags = [r.get("unknown") for r in records]
    return WindowStats(ood=[float(r["ood"]) for r in records if isinstance(r.get("ood"), int | float)],
                       labels=dict(labels), lengths=[int(r.get("chars", 0)) for r in records],
                       scripts=dict(scripts), unknown=None if any(f is None for f in flags) else sum(map(bool, flags)),
                       texts=len(records))


def window_of(model: Any, texts: Sequence[str], probs: np.ndarray, ood: np.ndarray) -> WindowStats:
    """The figures of a batch the model scored (``probs``, ``ood`` per text; empty texts left out)."""
    keep = [i for i, t in enumerate(texts) if t and t.strip()]
    kept = [texts[i] for i in keep]
    chars = model.reference.char_set if model.reference is not None and model.reference.chars else None
    return WindowStats.of(model.view(kept), kept, np.asarray(ood)[keep],
                          predicted_labels(model, np.asarray(probs)[keep]), chars)


# --------------------------------------------------------------------------- the report


def plot_drift(reference: Reference, batch: WindowStats, path: Any) -> None:
    """Reference against batch: the out-of-domain score distribution, the predicted-label shares, the lengths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import cjk_font_name

    font = cjk_font_name()
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        plt.rcParams["axes.unicode_minus"] = False
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    ref = reference.stats
    if ref.ood and batch.ood:
        top = float(np.quantile(np.concatenate([ref.ood, batch.ood]), 0.995))
        bins = np.linspace(0.0, max(top, 1.5), 40)
        axes[0].hist(np.clip(ref.ood, 0, bins[-1]), bins=bins, density=True, alpha=0.55, label="reference (dev)")
        axes[0].hist(np.clip(batch.ood, 0, bins[-1]), bins=bins, density=True, alpha=0.55, label="batch")
        axes[0].axvline(float(np.quantile(ref.ood, TAIL_QUANTILE)), color="k", lw=0.8, ls="--")
        axes[0].legend()
    axes[0].set_title("out-of-domain score")
    names = list(dict.fromkeys([*reference.labels, *ref.labels, *batch.labels]))
    x = np.arange(len(names))
    r = np.array([ref.labels.get(n, 0) for n in names], dtype=float)
    b = np.array([batch.labels.get(n, 0) for n in names], dtype=float)
    axes[1].bar(x - 0.2, r / max(r.sum(), 1), 0.4, label="reference")
    axes[1].bar(x + 0.2, b / max(b.sum(), 1), 0.4, label="batch")
    axes[1].set_xticks(x, names, rotation=45 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    axes[1].set_title("predicted labels (share)")
    top_len = float(np.quantile(np.concatenate([ref.lengths, batch.lengths]), 0.99)) if ref.lengths else 1.0
    bins = np.linspace(0, max(top_len, 2.0), 30)
    axes[2].hist(np.clip(ref.lengths, 0, bins[-1]), bins=bins, density=True, alpha=0.55, label="reference")
    axes[2].hist(np.clip(batch.lengths, 0, bins[-1]), bins=bins, density=True, alpha=0.55, label="batch")
    axes[2].set_title("text length (characters)")
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)


def write_drift_report(out: Any, reference: Reference, batch: WindowStats, overall: DriftReport,
                       windows: Sequence[DriftReport], about: dict) -> list[Any]:
    """``OUT/drift.json`` (the verdicts), ``OUT/drift.png`` and ``OUT/report.html``; returns the paths written."""
    from pathlib import Path

    from ..fileio import atomic_path, write_json, write_text
    from . import html_report as h
    from .plots import drawn

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "drift.json"]
    write_json(paths[0], {**about, "drift": overall.drift, "overall": overall.to_json(),
                          "windows": [w.to_json() for w in windows]})

    def draw() -> Path:
        with atomic_path(out / "drift.png") as tmp:
            plot_drift(reference, batch, tmp)
        return out / "drift.png"

    picture = drawn("the drift chart", draw)
    rows = [[s.name, f"{s.statistic:.4g}", f"{s.p_value:.3g}", "DRIFT" if s.drift else "ok",
             ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else k for k, v in s.detail.items()
                       if not isinstance(v, dict))] for s in overall.signals]
    verdict = "drift" if overall.drift else ("no verdict" if overall.reason else "no drift")
    sections = [("Verdict", h.cards([("verdict", verdict), ("texts", str(overall.texts)),
                                     ("signals drifting", str(len(overall.drifting))),
                                     ("alpha (Bonferroni)", f"{overall.alpha:g}")])
                 + (f'<p class="muted">{h.esc(overall.reason)}</p>' if overall.reason else "")),
                ("Signals", h.table(["signal", "statistic", "p-value", "verdict", "figures"], rows, left=(4,)))]
    if picture is not None:
        sections.append(("Reference and batch", h.figure(picture, "dev reference against the batch")))
        paths.append(picture)
    if windows:
        sections.append(("Windows", h.table(["window", "texts", "verdict", "drifting"], [
            [str(i + 1), str(w.texts), "DRIFT" if w.drift else ("-" if w.reason else "ok"), ", ".join(w.drifting)]
            for i, w in enumerate(windows)])))
    write_text(out / "report.html", h.page(f"Drift: {about.get('data', '')}", f"model {about.get('model', '')}",
                                           sections))
    paths.append(out / "report.html")
    return paths
