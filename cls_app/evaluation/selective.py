"""Selective prediction: what abstaining buys, measured on labeled rows.

* **Risk-coverage curve** (Geifman & El-Yaniv 2017): rows ranked by the confidence of the decided
  class; at coverage ``c`` the model answers the ``c`` most confident share and the risk is the
  error rate among them. **AURC** is the mean risk over every coverage ``1/n ... 1`` (lower is better;
  a model whose confidence ranks every error last has the smallest possible AURC for its accuracy).
* **Selective accuracy at 90 % coverage**: the accuracy of the 90 % most confident rows.
* **The model's own rule** on these rows: coverage, accuracy of the answered rows, and the share
  abstained as out of domain or for low confidence.
* **AUROC** of the out-of-domain score between two sets of texts (``bench/open_set.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tasks.abstain import LOW_CONFIDENCE, OUT_OF_DOMAIN, Abstention

COVERAGE_POINT = 0.9


@dataclass
class Selective:
    """The rows of an evaluation as selective prediction sees them, and :func:`selective_report` of them."""

    confidence: np.ndarray
    correct: np.ndarray
    abstention: Abstention
    threshold: float | None  # the rule's out-of-domain threshold
    report: dict

    @classmethod
    def of(cls, confidence: np.ndarray, correct: np.ndarray, abstention: Abstention, threshold: float | None
           ) -> Selective:
        return cls(confidence, correct, abstention, threshold, selective_report(confidence, correct, abstention))

    @property
    def has_ood(self) -> bool:
        return bool(np.isfinite(self.abstention.ood).any())

    def write_plots(self, risk_path: Path, ood_path: Path | None, title: str) -> None:
        from .plots import drawn

        drawn("the risk-coverage curve", plot_risk_coverage, self.confidence, self.correct, risk_path, title)
        if ood_path is not None:
            drawn("the out-of-domain histogram", plot_ood_histogram, self.abstention.ood, self.threshold, ood_path,
                  title)


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, risk)`` for answering the 1, 2, ..., n most confident rows."""
    order = np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable")
    wrong = 1.0 - np.asarray(correct, dtype=np.float64)[order]
    k = np.arange(1, len(order) + 1)
    return k / max(1, len(order)), np.cumsum(wrong) / k


def selective_accuracy(confidence: np.ndarray, correct: np.ndarray, coverage: float = COVERAGE_POINT) -> float:
    """Accuracy of the ``coverage`` share of rows the model is most confident about."""
    if not len(confidence):
        return 0.0
    cov, risk = risk_coverage(confidence, correct)
    i = max(0, int(np.ceil(coverage * len(cov))) - 1)
    return float(1.0 - risk[i])


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher on ``outside`` rows (NaN rows left out)."""
    from sklearn.metrics import roc_auc_score

    a = np.asarray(inside, dtype=np.float64)
    b = np.asarray(outside, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b]))


def selective_report(confidence: np.ndarray, correct: np.ndarray, abstention: Abstention) -> dict:
    """AURC, selective accuracy at 90 % and what the model's rule did on these rows."""
    confidence, correct = np.asarray(confidence), np.asarray(correct, dtype=bool)
    n = len(correct)
    _, risk = risk_coverage(confidence, correct)
    answered = ~abstention.abstained
    ood = abstention.ood[np.isfinite(abstention.ood)]
    return {
        "aurc": round(float(risk.mean()) if n else 0.0, 5),
        "accuracy": round(float(correct.mean()) if n else 0.0, 5),
        "selective_accuracy_at_90": round(selective_accuracy(confidence, correct), 5),
        "rule": {"coverage": round(float(answered.mean()) if n else 0.0, 5),
                 "accuracy_answered": round(float(correct[answered].mean()) if answered.any() else 0.0, 5),
                 "out_of_domain": round(sum(r == OUT_OF_DOMAIN for r in abstention.reason) / max(1, n), 5),
                 "low_confidence": round(sum(r == LOW_CONFIDENCE for r in abstention.reason) / max(1, n), 5)},
        "ood_score": ({"median": round(float(np.median(ood)), 4), "p95": round(float(np.quantile(ood, 0.95)), 4)}
                      if len(ood) else None),
    }


def format_selective(report: dict) -> str:
    """Two lines for report.txt and the console."""
    rule = report["rule"]
    return (f"selective: AURC {report['aurc']:.4f}; accuracy {report['accuracy']:.4f} on every row, "
            f"{report['selective_accuracy_at_90']:.4f} on the 90% most confident\n"
            f"abstaining (the model's rule): answers {rule['coverage']:.1%} of rows, accuracy "
            f"{rule['accuracy_answered']:.4f} on them; {rule['out_of_domain']:.1%} out of domain, "
            f"{rule['low_confidence']:.1%} low confidence")


def plot_risk_coverage(confidence: np.ndarray, correct: np.ndarray, path: Path, title: str) -> Path:
    """The risk-coverage curve as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cov, risk = risk_coverage(confidence, correct)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(cov, risk, lw=1.8, color="#1f77b4")
    ax.axvline(COVERAGE_POINT, color="#999", ls=":", lw=1)
    ax.set_xlabel("coverage (share of rows answered, most confident first)")
    ax.set_ylabel("risk (error rate of the answered rows)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(0.05, float(risk.max()) * 1.1) if len(risk) else 1)
    ax.set_title(f"risk-coverage, AURC {float(risk.mean()) if len(risk) else 0:.4f}\n{title}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ood_histogram(ood: np.ndarray, threshold: float | None, path: Path, title: str) -> Path:
    """The histogram of the rows' out-of-domain scores, with the rule's threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(ood, dtype=np.float64)
    values = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    if len(values):
        ax.hist(values, bins=50, color="#4c72b0", alpha=0.85)
    if threshold is not None:
        ax.axvline(threshold, color="#c44e52", lw=1.5, label=f"threshold {threshold:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("out-of-domain score (0: dev median, 1: dev 95th percentile)")
    ax.set_ylabel("rows")
    ax.set_title(f"out-of-domain scores\n{title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
