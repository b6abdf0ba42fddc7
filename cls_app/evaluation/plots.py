"""Pictures: the confusion-matrix heatmap, with class names drawn in a CJK font.

The font comes from the ``noto-cjk-sans-otc`` package (Noto Sans CJK, SIL OFL), installed
by requirements.txt. Where no CJK font can be found, the axes show label indices and a
legend maps each index to its name (so nothing is drawn as empty boxes).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_path

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def cjk_font_name() -> str | None:
    """Register the bundled CJK font with matplotlib; return its family name or None."""
    from matplotlib import font_manager

    try:
        import noto_cjk_sans_otc

        path = str(noto_cjk_sans_otc.FONT_PATH)
        font_manager.fontManager.addfont(path)
        return font_manager.FontProperties(fname=path).get_name()
    except Exception as exc:  # package missing or font unreadable: fall back to indices
        log.warning("no CJK font available (%s); confusion matrix will use label indices", exc)
        return None


def drawn(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or None with one warning when it fails for any reason but a failed write or an
    interrupt: a chart or a page is not worth the report it belongs to."""
    try:
        return fn(*args, **kwargs)
    except (OSError, KeyboardInterrupt, UserError):
        raise
    except Exception as exc:
        log.warning("%s could not be drawn (%s: %s); the report goes on without it", what, type(exc).__name__, exc)
        return None


def _needs_cjk(labels: list[str]) -> bool:
    return any(not label.isascii() for label in labels)


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], path: str | Path, title: str) -> str:
    """Save a heatmap of ``matrix`` (rows true, columns predicted) as PNG; return the mode used.

    The mode is ``"names"`` when class names are drawn, ``"indices"`` when the fallback
    (indices on the axes, legend with names) was used.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font_name() if _needs_cjk(labels) else None
    use_names = font is not None or not _needs_cjk(labels)
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        plt.rcParams["axes.unicode_minus"] = False
    ticks = labels if use_names else [str(i) for i in range(len(labels))]

    data = np.asarray(matrix, dtype=float)
    row_sums = data.sum(axis=1, keepdims=True)
    share = np.divide(data, row_sums, out=np.zeros_like(data), where=row_sums > 0)
    size = max(5.0, 0.6 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size + (2.5 if not use_names else 0), size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ax.set_xticks(range(len(labels)), ticks, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(int(data[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    if not use_names:
        legend = "\n".join(f"{i}: {name}" for i, name in enumerate(labels))
        fig.text(0.99, 0.5, legend, va="center", ha="right", fontsize=8, family="monospace")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return "names" if use_names else "indices"
