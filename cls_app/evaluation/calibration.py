"""Calibration: does a model that says "90 % sure" get 90 % of those rows right?

Expected calibration error (ECE), as in Guo et al. 2017 ("On Calibration of Modern Neural
Networks"): each row's *confidence* is its highest class probability; rows go into
:data:`ECE_BINS` equal-width bins of confidence over [0, 1] (bin ``b`` holds confidences in
``(b/B, (b+1)/B]``, the first bin also holds 0); then

    ECE = sum over bins of (rows in bin / rows) * |accuracy in bin - mean confidence in bin|

i.e. the average gap between how sure the model is and how often it is right, weighted by
how many rows have that confidence. MCE is the largest gap of a non-empty bin. Rows with NaN
probabilities are left out. A LinearSVC baseline's "probabilities" are a softmax of its
decision scores, not fitted probabilities, so its ECE measures that softmax only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..fileio import atomic_path

ECE_BINS = 15
"""Equal-width confidence bins for ECE and the reliability diagram (Guo et al. use 15)."""


def calibration(y_true: npt.ArrayLike, proba: np.ndarray, bins: int = ECE_BINS) -> dict:
    """ECE, MCE and the per-bin table ``{"lower", "upper", "count", "confidence", "accuracy"}``."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    proba = np.asarray(proba, dtype=np.float64)
    ok = ~np.isnan(proba).any(axis=1)
    y = np.asarray(y_true, dtype=int)[ok]
    p = proba[ok]
    conf = p.max(axis=1) if len(y) else np.empty(0)
    correct = (p.argmax(axis=1) == y) if len(y) else np.empty(0, dtype=bool)
    # bin b holds (b/B, (b+1)/B]; confidence 0 goes to bin 0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    table, ece, mce = [], 0.0, 0.0
    for b in range(bins):
        sel = idx == b
        count = int(sel.sum())
        row = {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
               "confidence": None, "accuracy": None}
        if count:
            c, a = float(conf[sel].mean()), float(correct[sel].mean())
            row["confidence"], row["accuracy"] = round(c, 6), round(a, 6)
            gap = abs(a - c)
            ece += count / len(y) * gap
            mce = max(mce, gap)
        table.append(row)
    return {"bins": bins, "n": int(len(y)), "ece": round(ece, 6), "mce": round(mce, 6),
            "mean_confidence": round(float(conf.mean()), 6) if len(y) else None,
            "accuracy": round(float(correct.mean()), 6) if len(y) else None, "table": table}


def format_calibration(cal: dict) -> str:
    """One line for report.txt."""
    if not cal["n"]:
        return "calibration: no rows"
    return (f"calibration ({cal['bins']} equal-width confidence bins): ECE={cal['ece']:.4f}  MCE={cal['mce']:.4f}  "
            f"mean confidence={cal['mean_confidence']:.4f} vs accuracy={cal['accuracy']:.4f}")


def plot_reliability(cal: dict, path: str | Path, title: str) -> None:
    """Save a reliability diagram: accuracy per confidence bin against the diagonal, and how
    many rows fall in each bin, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = cal["table"]
    width = 1.0 / cal["bins"]
    lefts = np.array([r["lower"] for r in table])
    acc = np.array([r["accuracy"] if r["count"] else 0.0 for r in table])
    conf = np.array([r["confidence"] if r["count"] else 0.0 for r in table])
    counts = np.array([r["count"] for r in table])
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(lefts, acc, width=width, align="edge", edgecolor="black", color="#4c72b0", label="accuracy")
    gap_low = np.minimum(acc, conf)
    ax.bar(lefts, np.abs(conf - acc), bottom=gap_low, width=width, align="edge", color="#dd8452", alpha=0.5,
           edgecolor="#dd8452", hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {cal['ece']:.4f} ({cal['bins']} bins)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    hist.bar(lefts, counts, width=width, align="edge", color="gray", edgecolor="black")
    hist.set_xlabel("confidence (highest class probability)")
    hist.set_ylabel("rows")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
