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

from ..fileio import atomic_path
from ..tasks.calibration import ECE_BINS, calibration

__all__ = ["ECE_BINS", "calibration", "format_calibration", "plot_reliability"]

def format_calibration(cal: dict) -> str:
    """One line for report.txt (with the figure before calibration, when the model is calibrated)."""
    if not cal["n"]:
        return "calibration: no rows"
    line = (f"calibration ({cal['bins']} equal-width confidence bins): ECE={cal['ece']:.4f}  MCE={cal['mce']:.4f}  "
            f"mean confidence={cal['mean_confidence']:.4f} vs accuracy={cal['accuracy']:.4f}")
    before = cal.get("before")
    if before:
        line += (f"  (before the temperature {cal['temperature']:.3f} fitted on dev: ECE={before['ece']:.4f}, "
                 f"mean confidence={before['mean_confidence']:.4f})")
    return line


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
