"""Abstaining: answering "none of these" for a text the model should not decide.

A model answers a row unless one of two tests fails (both fitted on dev, no out-of-domain data
needed):

* **out of domain**: the row's out-of-domain score (``ood``, computed by the model kind: a
  Mahalanobis distance of BERT's [CLS] vector to the class means, the distance of a TF-IDF vector
  to the class centroids, the mean of an ensemble's members; normalised so that 0 is dev's median
  and 1 dev's 95th percentile) is above :attr:`RejectRule.ood_threshold`, dev's
  :data:`OOD_QUANTILE` quantile;
* **low confidence**: the probability of the decided class is below the class's threshold
  (:attr:`RejectRule.confidence`), chosen so that a share ``target_coverage`` of dev is answered
  (one threshold for every class), or, with ``target_precision``, per class (where dev has
  :data:`MIN_CLASS_ROWS` rows decided as that class; else one threshold for the rest) as the lowest
  threshold whose answered dev rows reach that accuracy.

``--reject off`` answers every row; ``--reject T`` (a number) abstains below probability ``T``
and keeps the out-of-domain test. Label-set tasks (multi-label, hierarchical) use the
out-of-domain test only: their empty set is the low-confidence answer already, and an abstained
row's set is emptied.

The dev evidence (confidence, decision, correctness and ood score per dev row) is stored with the
model, so a rule for another target can be fitted again at load time (``predict --target-coverage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import UserError
from ..settings import setting

OOD_QUANTILE = 0.97
"""Dev rows above this quantile of the out-of-domain score count as out of domain (3 % of dev)."""
DEFAULT_COVERAGE = 0.92
"""``--reject auto``: the share of dev rows answered (the out-of-domain ones included)."""
MIN_OOD_ROWS = 30
"""Dev needs this many distinct out-of-domain scores for an out-of-domain threshold."""
MIN_CLASS_ROWS = 30
"""``--target-precision``: a class needs this many dev rows decided as it for a threshold of its own."""
REJECT_MODES = ("auto", "off")
LOW_CONFIDENCE = "low confidence"
OUT_OF_DOMAIN = "out of domain"


@dataclass(frozen=True)
class AbstainSettings:
    """When a model abstains (the flags of train, predict, evaluate, explain and serve; None: the folder's rule)."""

    reject: str | None = setting(None, "auto: abstain on texts below a confidence threshold or above an "
                                 "out-of-domain threshold, both chosen on dev; off: answer every text; a number T: "
                                 "abstain below probability T (default: the model's own rule; training: auto)",
                                 metavar="auto|off|T")
    target_coverage: float | None = setting(None, f"--reject auto: answer this share of dev (default "
                                            f"{DEFAULT_COVERAGE})", metavar="C")
    target_precision: float | None = setting(None, "--reject auto: per class, the lowest confidence threshold "
                                             "whose answered dev rows reach this accuracy (instead of a coverage)",
                                             metavar="P")

    def check(self) -> AbstainSettings:
        """A :class:`UserError` naming the flag for an impossible value."""
        if self.reject is not None and self.reject not in REJECT_MODES:
            try:
                value = float(self.reject)
            except ValueError:
                raise UserError(f"--reject must be auto, off or a probability, got {self.reject!r}") from None
            if not 0.0 <= value <= 1.0:
                raise UserError(f"--reject {self.reject}: a probability threshold must be in [0, 1]")
        targets = (("--target-coverage", self.target_coverage), ("--target-precision", self.target_precision))
        for name, target in targets:
            if target is not None and not 0.0 < target <= 1.0:
                raise UserError(f"{name} must be in (0, 1], got {target}")
        if self.target_coverage is not None and self.target_precision is not None:
            raise UserError("give --target-coverage or --target-precision, not both")
        if self.reject in ("off",) and (self.target_coverage or self.target_precision):
            raise UserError("--reject off answers every text: drop --target-coverage / --target-precision")
        return self

    @property
    def given(self) -> bool:
        """Whether anything was asked (else the model's own rule holds)."""
        return any(v is not None for v in (self.reject, self.target_coverage, self.target_precision))


@dataclass(frozen=True)
class DevEvidence:
    """Per dev row: the decided class's probability, the decision, whether it was right, the ood score."""

    confidence: np.ndarray
    pred: np.ndarray
    correct: np.ndarray
    ood: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {"dev_confidence": self.confidence.astype(np.float64), "dev_pred": self.pred.astype(np.int64),
                "dev_correct": self.correct.astype(np.int64), "dev_ood": self.ood.astype(np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DevEvidence:
        return cls(np.asarray(arrays["dev_confidence"], dtype=np.float64), np.asarray(arrays["dev_pred"]),
                   np.asarray(arrays["dev_correct"]).astype(bool), np.asarray(arrays["dev_ood"], dtype=np.float64))


class Abstention(NamedTuple):
    """Per row: abstained or not, why (None when answered) and the out-of-domain score (NaN: none)."""

    abstained: np.ndarray
    reason: list[str | None]
    ood: np.ndarray

    @classmethod
    def none(cls, n: int, ood: np.ndarray | None = None) -> Abstention:
        return cls(np.zeros(n, dtype=bool), [None] * n, np.full(n, np.nan) if ood is None else ood)

    def row(self, i: int) -> tuple[bool, str | None, float | None]:
        value = float(self.ood[i])
        return bool(self.abstained[i]), self.reason[i], None if np.isnan(value) else round(value, 4)


@dataclass(frozen=True)
class RejectRule:
    """When to abstain (see the module docstring); ``dev``: what it does on dev (coverage, accuracy)."""

    mode: str = "off"  # off, auto or threshold
    ood_threshold: float | None = None
    confidence: tuple[float, ...] | None = None  # per class; None: no confidence test
    target: dict = field(default_factory=dict)
    dev: dict = field(default_factory=dict)

    def apply(self, confidence: np.ndarray, pred: np.ndarray, ood: np.ndarray) -> Abstention:
        """The abstention of rows with the decided class's probability ``confidence``, decision ``pred``
        (-1: an empty text, never abstained) and ``ood`` score (NaN: not known)."""
        n = len(pred)
        abstained = np.zeros(n, dtype=bool)
        reason: list[str | None] = [None] * n
        if self.mode == "off" or not n:
            return Abstention(abstained, reason, np.asarray(ood, dtype=np.float64))
        present = np.asarray(pred) >= 0
        far = np.zeros(n, dtype=bool)
        if self.ood_threshold is not None:
            with np.errstate(invalid="ignore"):
                far = present & (np.asarray(ood) > self.ood_threshold)
        low = np.zeros(n, dtype=bool)
        if self.confidence is not None:
            limits = np.asarray(self.confidence)[np.clip(np.asarray(pred), 0, None)]
            low = present & ~far & (np.asarray(confidence) < limits)
        for i in np.flatnonzero(far):
            reason[i] = OUT_OF_DOMAIN
        for i in np.flatnonzero(low):
            reason[i] = LOW_CONFIDENCE
        return Abstention(far | low, reason, np.asarray(ood, dtype=np.float64))

    def to_json(self) -> dict:
        return {"mode": self.mode, "ood_threshold": self.ood_threshold,
                "confidence": None if self.confidence is None else [round(float(v), 6) for v in self.confidence],
                "target": dict(self.target), "dev": dict(self.dev)}

    @classmethod
    def from_json(cls, data: dict | None) -> RejectRule:
        if not isinstance(data, dict):
            return cls()
        conf = data.get("confidence")
        thr = data.get("ood_threshold")
        return cls(str(data.get("mode") or "off"), float(thr) if isinstance(thr, int | float) else None,
                   tuple(float(v) for v in conf) if isinstance(conf, list) else None,
                   dict(data.get("target") or {}), dict(data.get("dev") or {}))


def ood_threshold(ood: np.ndarray, quantile: float = OOD_QUANTILE) -> float | None:
    """Dev's ``quantile`` of the out-of-domain scores, and at least 1 (dev's 95th percentile); None when dev has
    fewer than :data:`MIN_OOD_ROWS` distinct scores (a few texts, or dev texts repeating each other, say
    nothing about where the domain ends)."""
    values = np.asarray(ood, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(np.unique(np.round(values, 9))) < MIN_OOD_ROWS:
        return None
    return round(max(float(np.quantile(values, quantile)), 1.0), 6)


def coverage_threshold(confidence: np.ndarray, answerable: np.ndarray, coverage: float) -> float:
    """The confidence threshold that answers at least ``coverage`` of all rows (the fewest that do, without
    ties), given which rows the out-of-domain test leaves (``answerable``); 0 when that test alone already
    abstains enough."""
    n = len(confidence)
    keep = int(np.ceil(coverage * n - 1e-9))
    values = np.sort(np.asarray(confidence)[answerable])[::-1]
    if keep >= len(values) or not len(values):
        return 0.0
    if keep <= 0:
        return 1.0 + 1e-9
    # the keep-th highest confidence is the lowest still answered
    return float(values[keep - 1])


def precision_threshold(confidence: np.ndarray, correct: np.ndarray, precision: float) -> float:
    """The lowest threshold whose rows at or above it reach ``precision`` accuracy (1 + eps: none does)."""
    if not len(confidence):
        return 0.0
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(hits >= precision - 1e-12)
    if not len(ok):
        return 1.0 + 1e-9
    return float(confidence[order][ok[-1]])


def fit_rule(evidence: DevEvidence, settings: AbstainSettings, n_classes: int, label_sets: bool = False
             ) -> RejectRule:
    """The rule ``settings`` ask for, fitted on the dev ``evidence``."""
    settings.check()
    mode = settings.reject or "auto"
    if mode == "off":
        return RejectRule("off")
    thr = ood_threshold(evidence.ood)
    answerable = ~(np.nan_to_num(evidence.ood, nan=-np.inf) > (thr if thr is not None else np.inf))
    target: dict[str, Any]
    if label_sets:
        conf, target = None, {"ood_quantile": OOD_QUANTILE}
    elif mode != "auto":
        conf, target = (float(mode),) * n_classes, {"threshold": float(mode)}
    elif settings.target_precision is not None:
        conf = per_class_precision(evidence, answerable, settings.target_precision, n_classes)
        target = {"precision": settings.target_precision}
    else:
        coverage = settings.target_coverage or DEFAULT_COVERAGE
        conf = (round(coverage_threshold(evidence.confidence, answerable, coverage), 6),) * n_classes
        target = {"coverage": coverage}
    rule = RejectRule("auto" if mode == "auto" else "threshold", thr, conf, target)
    return RejectRule(rule.mode, rule.ood_threshold, rule.confidence, {**target, "ood_quantile": OOD_QUANTILE},
                      dev_summary(rule, evidence))


def per_class_precision(evidence: DevEvidence, answerable: np.ndarray, precision: float, n_classes: int
                        ) -> tuple[float, ...]:
    """Per-class thresholds for ``precision`` (classes with few dev rows share one threshold)."""
    conf, pred, correct = evidence.confidence, evidence.pred, evidence.correct
    small = np.array([int(((pred == c) & answerable).sum()) < MIN_CLASS_ROWS for c in range(n_classes)])
    rest = answerable & small[np.clip(pred, 0, None)]
    shared = precision_threshold(conf[rest], correct[rest], precision) if rest.any() else 0.0
    out = []
    for c in range(n_classes):
        if small[c]:
            out.append(shared)
        else:
            rows = answerable & (pred == c)
            out.append(precision_threshold(conf[rows], correct[rows], precision))
    return tuple(round(v, 6) for v in out)


def dev_summary(rule: RejectRule, evidence: DevEvidence) -> dict:
    """What ``rule`` does on dev: coverage, accuracy of the answered rows, share abstained per reason."""
    got = rule.apply(evidence.confidence, evidence.pred, evidence.ood)
    answered = ~got.abstained
    n = max(1, len(answered))
    return {"rows": int(len(answered)), "coverage": round(float(answered.mean()) if len(answered) else 0.0, 4),
            "accuracy_answered": round(float(evidence.correct[answered].mean()) if answered.any() else 0.0, 4),
            "accuracy_all": round(float(evidence.correct.mean()) if len(answered) else 0.0, 4),
            "out_of_domain": round(sum(r == OUT_OF_DOMAIN for r in got.reason) / n, 4),
            "low_confidence": round(sum(r == LOW_CONFIDENCE for r in got.reason) / n, 4)}
