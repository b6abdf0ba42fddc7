"""``run.py compare``: several model folders (any kinds) side by side on one test set.

Writes into the report folder:

* ``comparison.md`` -- the table (accuracy, macro-F1, weighted-F1, per-class F1, training
  time, prediction throughput, model size), best value of each column in bold, and the
  significance test;
* ``comparison.csv`` -- the same numbers, plus a last row ``best`` naming the best model of
  each column;
* ``comparison.json`` -- everything, machine-readable;
* ``comparison.png`` -- horizontal bars of accuracy sorted by it, bootstrap 95 % intervals as whiskers,
  the axis spanning the models' range, the recommended model in red, the majority floor as a line;
* ``report.html`` -- the table, the chart and the test on one self-contained page.

Throughput is measured in the same run (texts per second through ``predict_proba``, model
already loaded, one pass over the test texts). Size is the bytes of the files needed for
prediction. Training time comes from each folder's metadata. The majority-class floor is
shown but never marked best.

Significance: the first model given (or ``reference``) against the most accurate other model
that costs less (by the kinds' declared costs; any other when none does), by McNemar's exact
test on the texts where exactly one of the two is right, and a paired bootstrap 95 % interval
for the accuracy difference.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..fileio import atomic_files, atomic_open, atomic_path, write_json, write_text
from ..models.base import ModelScores
from ..models.folders import folder_family, model_size_bytes
from ..settings import setting
from ..tasks.calibration import metric_of
from ..text.script import scripts_of
from .html_report import comparison_page
from .plots import drawn
from .scripts import by_script
from .selective import selective_accuracy

log = logging.getLogger(__name__)

ALPHA = 0.05


@dataclass
class ModelResult:
    """One model's scores and costs on the comparison data."""

    name: str
    kind: str
    path: Path
    metrics: dict
    correct: np.ndarray  # bool per text
    predict_seconds: float
    size_bytes: int
    train_seconds: float | None
    floor: bool = False
    extra: dict = field(default_factory=dict)
    cost: float = 10.0  # the kind's declared relative cost

    @property
    def texts_per_s(self) -> float:
        return len(self.correct) / max(self.predict_seconds, 1e-9)


# --------------------------------------------------------------------------- statistics


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test of two classifiers on the same texts.

    ``b`` = texts A gets right and B wrong, ``c`` = the reverse; under "same error rate"
    ``b ~ Binomial(b + c, 1/2)``. Returns b, c and the two-sided p-value (1.0 when b + c = 0).
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"different lengths: {a.shape} vs {b_.shape}")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"a_right_b_wrong": b, "a_wrong_b_right": c, "p_value": min(p, 1.0)}


def paired_bootstrap_ci(
    correct_a: np.ndarray, correct_b: np.ndarray, n_resamples: int = 1000, level: float = 0.95, seed: int = 42
) -> tuple[float, float]:
    """Percentile interval for accuracy(A) - accuracy(B), resampling texts with replacement."""
    diff = np.asarray(correct_a, dtype=float) - np.asarray(correct_b, dtype=float)
    n = len(diff)
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 100):  # chunks keep memory small for large n
        k = min(100, n_resamples - start)
        means[start:start + k] = diff[rng.integers(0, n, size=(k, n))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


# --------------------------------------------------------------------------- running models


def expand_model_dirs(paths: list[str | Path]) -> list[Path]:
    """Model folders; a folder that holds model folders (e.g. saved_models/baselines) expands."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise UserError(f"model folder not found: {path}")
        if folder_family(path):
            out.append(path)
            continue
        inner = sorted(p for p in path.iterdir() if p.is_dir() and folder_family(p))
        if not inner:
            raise UserError(f"{path} is neither a model folder nor a folder of model folders")
        out.extend(inner)
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


def results_of(scores: list[ModelScores], data: Any) -> tuple[list[ModelResult], list[str]]:
    """Metrics and per-text correctness of each model on ``data`` (its task's), in the union of their labels.

    A label a model does not know is never predicted by it; a label of ``data`` no model knows is an error.
    """
    task = scores[0].model.task
    labels: list[str] = []
    for s in scores:
        if s.model.task.multi != task.multi:
            raise UserError(f"{s.model.path}: a {s.model.task.name} model cannot be compared with "
                            f"{task.name} models")
        labels += [name for name in s.model.labels if name not in labels]
    y = task.encode(data, labels, "are not known to any of the models (they know: {known})")
    scripts = scripts_of(data.texts)  # once for every model
    results = []
    for s in scores:
        full = np.full((len(data), len(labels)), -1.0)
        full[:, [labels.index(n) for n in s.model.labels]] = np.nan_to_num(s.probs, nan=-1.0)
        common = s.model.task.align(s.model.labels, labels)
        path = s.model.path
        correct = common.correct(y, full, labels)
        extra: dict[str, Any] = {}
        if not task.multi:  # selective prediction: accuracy of the 90 % most confident, share the rule answers
            confidence, _ = s.model.task.answer(s.probs, s.model.labels)
            abstention = s.model.abstention(s.outputs)
            extra = {"acc_at_90": selective_accuracy(confidence, correct),
                     "answered": float(np.mean(~abstention.abstained)) if len(correct) else 0.0}
        if not task.multi:
            extra["by_script"] = by_script(data.texts, lambda rows, c=correct, f=full: {
                "accuracy": round(float(np.mean(c[rows])), 6), "macro_f1": round(float(metric_of(
                    y[rows], f[rows].argmax(axis=1), len(labels), "macro_f1")), 6)}, scripts)
        results.append(ModelResult(
            name=s.name, kind=s.model.family, path=Path(path) if path is not None else Path(s.name),
            metrics=common.metrics(y, full, labels), correct=correct,
            predict_seconds=s.seconds, size_bytes=model_size_bytes(path) if path is not None else 0,
            train_seconds=s.model.train_seconds(), floor=s.model.floor, extra=extra, cost=s.model.cost,
        ))
    return results, labels


# --------------------------------------------------------------------------- the report


# (key, header, higher is better)


def results_table(results: list[ModelResult], labels: list[str]) -> pd.DataFrame:
    """One row per model: scores, per-class F1, costs (numbers, no formatting)."""
    rows = []
    for r in results:
        row = {
            "model": r.name, "kind": r.kind,
            "accuracy": r.metrics["accuracy"], "macro_f1": r.metrics["macro_f1"],
            "weighted_f1": r.metrics["weighted_f1"],
        }
        if "micro_f1" in r.metrics:  # label-set models (evaluation.compare_sets)
            row["micro_f1"] = r.metrics["micro_f1"]
        for label in labels:
            row[f"f1_{label}"] = r.metrics["per_class"][label]["f1-score"]
        for key in ("acc_at_90", "answered"):
            if key in r.extra:
                row[key] = r.extra[key]
        row["train_seconds"] = r.train_seconds
        row["texts_per_s"] = r.texts_per_s
        row["size_mb"] = r.size_bytes / 1e6
        rows.append(row)
    return pd.DataFrame(rows)


def best_rows(table: pd.DataFrame, floor: list[bool]) -> dict[str, list[int]]:
    """For each numeric column, the row indices holding the best value (ties all count)."""
    lower_better = {"train_seconds", "size_mb"}
    ranked = table.loc[[not f for f in floor]]
    best: dict[str, list[int]] = {}
    for col in table.columns[2:]:
        if col == "answered":  # the share the model's rule answers: a choice, not a score
            best[col] = []
            continue
        values = pd.to_numeric(ranked[col], errors="coerce").dropna()
        if values.empty:
            best[col] = []
            continue
        target = values.min() if col in lower_better else values.max()
        best[col] = [int(i) for i in values.index if np.isclose(values[i], target, rtol=1e-12, atol=1e-12)]
    return best


def _fmt(col: str, value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if col == "train_seconds":
        return f"{value:.3f}" if value < 1 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"
    if col == "texts_per_s":
        return f"{value:,.0f}"
    if col == "size_mb":
        return f"{value:.2f}"
    return f"{value:.4f}"


def _header(col: str) -> str:
    fixed = {"model": "model", "kind": "kind", "accuracy": "accuracy", "macro_f1": "macro-F1",
             "weighted_f1": "weighted-F1", "micro_f1": "micro-F1", "train_seconds": "train s", "texts_per_s": "texts/s",
             "size_mb": "size MB", "acc_at_90": "acc@90%", "answered": "answered"}
    return fixed.get(col, f"F1 {col[3:]}" if col.startswith("f1_") else col)


def markdown_table(table: pd.DataFrame, best: dict[str, list[int]]) -> str:
    """The table as GitHub Markdown, best value of each column in bold."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(_header(c) for c in cols) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(cols) - 2)) + "|"]
    for i, row in table.iterrows():
        cells = []
        for c in cols:
            if c in ("model", "kind"):
                cells.append(str(row[c]))
                continue
            text = _fmt(c, row[c])
            cells.append(f"**{text}**" if i in best.get(c, []) else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def significance(
    results: list[ModelResult], reference: str | None = None, n_resamples: int = 1000, seed: int = 42
) -> dict | None:
    """The first model (or ``reference``) against the most accurate other model that costs less (any other
    when none does); the floor takes no part."""
    by_name = {r.name: r for r in results}
    if reference is not None:
        if reference not in by_name:
            raise UserError(f"--reference {reference!r} is not one of the models ({', '.join(by_name)})")
        a = by_name[reference]
    else:
        ranked = [r for r in results if not r.floor]
        if len(ranked) < 2:
            return None
        a = ranked[0]
    others = [r for r in results if r is not a and not r.floor]
    cheaper = [r for r in others if r.cost < a.cost] or others
    if not cheaper:
        return None
    b = max(cheaper, key=lambda r: r.metrics["accuracy"])
    test = mcnemar_exact(a.correct, b.correct)
    low, high = paired_bootstrap_ci(a.correct, b.correct, n_resamples=n_resamples, seed=seed)
    diff = a.metrics["accuracy"] - b.metrics["accuracy"]
    return {
        "a": a.name, "b": b.name, "n": len(a.correct), "accuracy_a": a.metrics["accuracy"],
        "accuracy_b": b.metrics["accuracy"], "accuracy_difference": diff, **test,
        "bootstrap_ci95": [low, high], "bootstrap_resamples": n_resamples, "alpha": ALPHA,
        "significant": test["p_value"] < ALPHA,
    }


def significance_text(sig: dict | None) -> str:
    """A short paragraph stating the test and its verdict."""
    if sig is None:
        return "No significance test: it needs at least two models besides the majority floor."
    verdict = "significant" if sig["significant"] else "not significant"
    better = sig["a"] if sig["accuracy_difference"] > 0 else sig["b"]
    low, high = sig["bootstrap_ci95"]
    return (
        f"**{sig['a']}** vs **{sig['b']}** on the same {sig['n']} texts: accuracy "
        f"{sig['accuracy_a']:.4f} vs {sig['accuracy_b']:.4f} (difference {sig['accuracy_difference']:+.4f}, "
        f"paired bootstrap 95% CI [{low:+.4f}, {high:+.4f}], {sig['bootstrap_resamples']} resamples). "
        f"McNemar exact test: {sig['a']} right where {sig['b']} is wrong on {sig['a_right_b_wrong']} texts, "
        f"the reverse on {sig['a_wrong_b_right']}; p = {sig['p_value']:.3g}, so the difference is "
        f"**{verdict}** at the {sig['alpha']} level"
        + (f" ({better} is better)." if sig["significant"] else ".")
    )


def versus_others(results: list[ModelResult], chosen: ModelResult, n_resamples: int = 1000,
                  seed: int = 42) -> list[dict]:
    """McNemar's exact test and the paired bootstrap interval of ``chosen`` against every other
    non-floor model."""
    rows = []
    for other in results:
        if other is chosen or other.floor:
            continue
        low, high = paired_bootstrap_ci(chosen.correct, other.correct, n_resamples=n_resamples, seed=seed)
        test = mcnemar_exact(chosen.correct, other.correct)
        rows.append({"other": other.name, "accuracy_difference": chosen.metrics["accuracy"] - other.metrics["accuracy"],
                     **test, "bootstrap_ci95": [low, high], "significant": test["p_value"] < ALPHA})
    return rows


def recommendation_summary(results: list[ModelResult], recommended: dict, n_resamples: int = 1000,
                           seed: int = 42) -> dict:
    """The recommended model (``recommended["path"]``, chosen on dev) scored here, against every other model."""
    target = Path(recommended["path"]).resolve()
    chosen = next((r for r in results if Path(r.path).resolve() == target), None)
    if chosen is None:
        raise ValueError(f"the recommended model {target} is not among the compared models")
    return {
        **recommended, "name": chosen.name, "kind": chosen.kind,
        "metrics": {k: chosen.metrics[k] for k in ("accuracy", "macro_f1", "weighted_f1")},
        "versus": versus_others(results, chosen, n_resamples, seed),
    }


def recommendation_text(rec: dict, data_name: str) -> str:
    """The "Recommended model" section: why it was chosen, its figures here, its tests against the others."""
    m = rec["metrics"]
    lines = [
        f"**{rec['name']}** ({rec['kind']}), chosen on dev: {rec['why']}.", "",
        f"On {data_name}: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}. "
        "Against every other model (McNemar's exact test on the texts exactly one of the two gets right; "
        "paired bootstrap 95% interval of the accuracy difference):", "",
        "| against | accuracy difference | 95% CI | right where it is wrong | wrong where it is right | p | "
        "significant |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for v in rec["versus"]:
        low, high = v["bootstrap_ci95"]
        lines.append(f"| {v['other']} | {v['accuracy_difference']:+.4f} | [{low:+.4f}, {high:+.4f}] | "
                     f"{v['a_right_b_wrong']} | {v['a_wrong_b_right']} | {v['p_value']:.3g} | "
                     f"{'yes' if v['significant'] else 'no'} |")
    return "\n".join(lines)


def accuracy_interval(correct: np.ndarray, n_resamples: int = 1000, seed: int = 42) -> tuple[float, float]:
    """Bootstrap 95 % percentile interval of the accuracy (texts resampled with replacement)."""
    c = np.asarray(correct, dtype=float)
    if not len(c):
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = c[rng.integers(0, len(c), size=(n_resamples, len(c)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def plot_comparison(results: list[ModelResult], path: str | Path, title: str, recommended: str | None = None) -> None:
    """What users read first: one horizontal bar per model, sorted by accuracy, with its bootstrap 95 % interval
    as a whisker, the axis spanning the models' range (not 0 to 1), the recommended model marked and the
    majority floor as a dashed line (or named at the edge when it is far below)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import cjk_font_name

    if any(not r.name.isascii() for r in results) or not title.isascii():
        font = cjk_font_name()
        if font:
            plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
    ranked = sorted((r for r in results if not r.floor), key=lambda r: r.metrics["accuracy"])
    floors = [r for r in results if r.floor]
    acc = np.array([r.metrics["accuracy"] for r in ranked])
    ci = np.array([accuracy_interval(r.correct) for r in ranked]).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * max(3, len(ranked)) + 1.4))
    colors = ["#c44e52" if r.name == recommended else "#4c72b0" for r in ranked]
    y = np.arange(len(ranked))
    ax.barh(y, acc, color=colors, height=0.6)
    ax.errorbar(acc, y, xerr=np.abs(ci.T - acc), fmt="none", ecolor="#222", elinewidth=1.2, capsize=3)
    lows = ci[:, 0] if len(ci) else np.array([0.0])
    span_low, span_high = float(lows.min()), float(ci[:, 1].max()) if len(ci) else 1.0
    pad = max(0.01, 0.15 * (span_high - span_low))
    left, right = max(0.0, span_low - pad), min(1.0, span_high + pad)
    for r in floors:
        value = r.metrics["accuracy"]
        if value >= left:
            ax.axvline(value, color="#888", ls="--", lw=1)
            ax.text(value, len(ranked) - 0.4, f" {r.name} {value:.3f}", fontsize=7, color="#555")
        else:
            ax.text(left, -0.9, f"{r.name} floor {value:.3f} (off the axis)", fontsize=7, color="#555")
    for i, r in enumerate(ranked):
        mark = "  (recommended)" if r.name == recommended else ""
        ax.text(ci[i, 1] + pad * 0.05, i, f"{acc[i]:.4f}{mark}", va="center", fontsize=8)
    ax.set_yticks(y, [r.name for r in ranked])
    ax.set_xlim(left, right + pad * 1.5)
    ax.set_xticks([t for t in ax.get_xticks() if left <= t <= 1.0 + 1e-9])
    ax.set_ylim(-1.2, len(ranked) - 0.2)
    ax.set_xlabel("accuracy (bars) with bootstrap 95% intervals (whiskers)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def write_report(
    results: list[ModelResult], labels: list[str], sig: dict | None, out_dir: str | Path, data_name: str,
    recommendation: dict | None = None,
) -> tuple[dict, dict[str, Path]]:
    """Write comparison.md/.csv/.json/.png and report.html into ``out_dir``; return comparison.json's
    content and the files' paths.

    The files are written aside and moved in together, so a failed write leaves an earlier
    comparison in ``out_dir`` whole. The chart and the page are extras: when drawing one fails (not
    a write), a warning says so and the rest is written without it (an earlier one removed).
    """
    out_dir = Path(out_dir)
    names = {**{k: f"comparison.{k}" for k in ("md", "csv", "png", "json")}, "html": "report.html"}
    with atomic_files(out_dir, list(names.values()), optional=(names["png"], names["html"])) as tmp:
        summary = _write_report_files(results, labels, sig, tmp, data_name, recommendation)
    return summary, {k: out_dir / name for k, name in names.items() if (out_dir / name).is_file()}


def _write_report_files(
    results: list[ModelResult], labels: list[str], sig: dict | None, out_dir: Path, data_name: str,
    recommendation: dict | None,
) -> dict:
    table = results_table(results, labels)
    floor = [r.floor for r in results]
    best = best_rows(table, floor)
    paths = {k: out_dir / f"comparison.{k}" for k in ("md", "csv", "json", "png")}

    n = len(results[0].correct) if results else 0
    md = [
        f"# Model comparison on {data_name} ({n} texts)", "",
        markdown_table(table, best), "",
        "Best value of each column in **bold** (highest; for train s and size MB, lowest)"
        + ("; the majority-class floor is not ranked" if any(floor) else "") + ". "
        "texts/s: one pass over the texts (probabilities and out-of-domain scores) with the model loaded, "
        "measured in this run on this machine; size: the files needed for prediction; "
        "train s: from each folder's metadata; acc@90%: accuracy of the 90% of texts the model is most "
        "confident about; answered: the share its abstention rule answers (docs/abstain.md).", "",
        "## Significance", "", significance_text(sig), "",
    ]
    mixed = [r for r in results if r.extra.get("by_script")]
    if mixed:  # the file mixes scripts: how each model does on each
        present = list(mixed[0].extra["by_script"])
        md += ["## By script", "", "Accuracy / macro-F1 on the rows of each script (as detected; rows: "
               + ", ".join(f"{k} {v['n']}" for k, v in mixed[0].extra["by_script"].items()) + ").", "",
               "| model | " + " | ".join(present) + " |", "|---|" + "---:|" * len(present)]
        for r in mixed:
            cells = [f"{r.extra['by_script'][k]['accuracy']:.4f} / {r.extra['by_script'][k]['macro_f1']:.4f}"
                     for k in present]
            md.append(f"| {r.name} | " + " | ".join(cells) + " |")
        md.append("")
    if recommendation is not None:
        md += ["## Recommended model", "", recommendation_text(recommendation, data_name), ""]
    write_text(paths["md"], "\n".join(md))

    csv = table.copy()
    best_row = {"model": "best", "kind": ""}
    for col in table.columns[2:]:
        best_row[col] = " ".join(table.loc[i, "model"] for i in best.get(col, []))
    csv = pd.concat([csv.astype(object), pd.DataFrame([best_row])], ignore_index=True)
    with atomic_open(paths["csv"], "w", newline="") as fh:
        csv.to_csv(fh, index=False)

    summary = {
        "data": data_name, "n": n, "labels": labels,
        "models": [
            {"name": r.name, "kind": r.kind, "path": str(r.path), "floor": r.floor,
             "accuracy": r.metrics["accuracy"], "macro_f1": r.metrics["macro_f1"],
             "weighted_f1": r.metrics["weighted_f1"],
             **({"micro_f1": r.metrics["micro_f1"]} if "micro_f1" in r.metrics else {}),
             "per_class_f1": {k: r.metrics["per_class"][k]["f1-score"] for k in labels},
             "train_seconds": r.train_seconds, "predict_seconds": round(r.predict_seconds, 4),
             "texts_per_s": round(r.texts_per_s, 1), "size_bytes": r.size_bytes,
             **({"by_script": r.extra["by_script"]} if r.extra.get("by_script") else {})}
            for r in results
        ],
        "best": {col: [table.loc[i, "model"] for i in rows] for col, rows in best.items()},
        "significance": sig,
        **({"recommendation": recommendation} if recommendation is not None else {}),
    }
    write_json(paths["json"], summary)
    chosen = None
    if recommendation is not None:
        chosen = next((r.name for r in results if Path(r.path).resolve() == Path(recommendation["path"]).resolve()),
                      None)
    drawn(f"the comparison chart ({paths['png'].name})", plot_comparison, results, paths["png"],
          f"{data_name}: {n} texts", chosen)
    notes = significance_text(sig)
    if recommendation is not None:
        notes += "\n\n" + recommendation_text(recommendation, data_name)
    page = drawn("the comparison page (report.html)", comparison_page, f"Model comparison on {data_name}",
                 f"{n} texts, {len(results)} models", table, best, notes,
                 paths["png"] if paths["png"].is_file() else None, {c: _header(c) for c in table.columns})
    if page is not None:
        write_text(out_dir / "report.html", page)
    return json.loads(json.dumps(summary))


@dataclass
class Comparison:
    """A written comparison: ``summary`` (comparison.json's content) and the files."""

    summary: dict
    paths: dict[str, Path]
    out: Path

    @property
    def markdown(self) -> str:
        return self.paths["md"].read_text(encoding="utf-8")


@dataclass(frozen=True)
class CompareOptions:
    """The significance tests of ``compare`` (the CLI builds its flags from these)."""

    reference: str | None = setting(None, "model name to test against the most accurate cheaper model (default: "
                                    "the first model given)")
    bootstrap: int = setting(1000, "paired bootstrap resamples (default: %(default)s)")
    seed: int = setting(42, "random seed of the bootstrap (default: %(default)s)")


def compare(scores: list[ModelScores], data: Any, out_dir: str | Path, options: CompareOptions = CompareOptions(),
            recommended: dict | None = None) -> Comparison:
    """Score the models' predictions on ``data`` (records of their task), write the report, return what it holds.

    ``recommended`` (``{"path": model folder, "why": text}``, the model chosen on dev) adds a
    "Recommended model" section: its figures and McNemar's test against every other model.
    """
    if options.bootstrap < 1:
        raise UserError("--bootstrap must be at least 1")
    if not len(data):
        raise UserError(f"{data.source}: no labeled rows to compare on")
    results, labels = results_of(scores, data)
    sig = significance(results, reference=options.reference, n_resamples=options.bootstrap, seed=options.seed)
    rec = recommendation_summary(results, recommended, options.bootstrap, options.seed) if recommended else None
    summary, paths = write_report(results, labels, sig, out_dir, Path(data.source).name, rec)
    return Comparison(summary, paths, Path(out_dir))
