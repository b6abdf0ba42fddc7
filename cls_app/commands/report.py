"""What the commands print: metric reports, the training summary line, comparisons, the recommendation."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def print_metrics_report(title: str, metrics: dict, labels: list[str], task: Any) -> None:
    """A title line (if any), then the task's report (per class / per label figures and the headline)."""
    if title:
        print(title)
    print(task.format_report(metrics, labels))


def print_train_summary(metrics: dict) -> None:
    """One line: training time and speed, dev and test accuracy / macro-F1, skipped rows."""
    summary = f"train {metrics['train_seconds']:.0f}s ({metrics['train_samples_per_s']:.0f} samples/s)"
    for split in ("dev", "test"):
        if split in metrics:
            m = metrics[split]
            summary += f" | {split} accuracy {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f}"
            if "micro_f1" in m:
                summary += f" micro-F1 {m['micro_f1']:.4f}"
    skipped = {k: v for k, v in metrics.get("skipped_rows", {}).items() if v}
    if skipped:
        summary += " | skipped bad rows: " + ", ".join(f"{k} {v}" for k, v in skipped.items())
    print(summary)


def print_job(result: Any) -> None:
    """The main job's report (rank 0): the test report, the summary line, the comparison, the recommendation."""
    from ..evaluation.analysis import format_analysis

    if not result.is_main:
        return
    if result.test is not None:
        name = Path(str(result.test_source)).name
        print_metrics_report(f"test ({name}):", result.test.metrics, result.labels, result.task)
        analysis = format_analysis(result.test.metrics)  # single-label reports: errors and calibration
        if analysis:
            print("\n" + analysis)
    elif result.best_dev:
        print_metrics_report("dev (best evaluation):", result.best_dev, result.labels, result.task)
    print_train_summary(result.metrics)
    print(f"model saved to {result.out}")
    if result.comparison is not None:
        print_comparison(result.comparison)
    if result.recommendation is not None:
        print_recommendation(result.recommendation, result.out)


def print_comparison(comparison: Any) -> None:
    """The comparison table (Markdown) and where the report went."""
    print(comparison.markdown)
    print(f"report written to {comparison.out}/ ({', '.join(p.name for p in comparison.paths.values())})")


def print_recommendation(pointer: dict, out: Any) -> None:
    """The recommended model in two lines: what, why, its held-out figure, and how to use it."""
    print(f"recommended model: {pointer['name']} ({pointer['kind']}, {out}/{pointer['path']}): {pointer['why']}")
    figures = pointer.get("comparison")
    if figures:
        split = figures["split"]
        worse = [v["other"] for v in figures["versus"] if v["significant"] and v["accuracy_difference"] > 0]
        print(f"  {split} accuracy {figures['accuracy']:.4f} macro-F1 {figures['macro_f1']:.4f}; significantly "
              f"better (McNemar p < 0.05) than: {', '.join(worse) or 'none'}")
    fast = pointer.get("fastest")
    if fast and fast["name"] != pointer["name"]:
        print(f"  fastest within 0.5 points on dev: {fast['name']} ({out}/{fast['path']}, {fast['texts_per_s']:,.0f} "
              f"texts/s, dev {fast['dev'].get(pointer['metric'], 0.0):.4f})")
    print(f"  written to {out}/best.json: `predict --model {out}` uses it (--no-follow: the BERT itself)")
