"""What the commands print: metric reports, the training summary line, comparisons."""

from __future__ import annotations


def print_metrics_report(title: str, metrics: dict, labels: list[str]) -> None:
    """A title line (if any), then per-class precision/recall/F1 and the headline figures."""
    from ..metrics import format_report
    from ..multilabel import MULTI_TASKS, format_multilabel_report

    if title:
        print(title)
    label_sets = metrics.get("task") in MULTI_TASKS
    print(format_multilabel_report(metrics, labels) if label_sets else format_report(metrics, labels))


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


def print_comparison(comparison) -> None:
    """The comparison table (Markdown) and where the report went."""
    print(comparison.markdown)
    print(f"report written to {comparison.out}/ ({', '.join(p.name for p in comparison.paths.values())})")


def print_recommendation(pointer: dict, out) -> None:
    """The recommended model in two lines: what, why, its held-out figure, and how to use it."""
    print(f"recommended model: {pointer['name']} ({pointer['kind']}, {out}/{pointer['path']}): {pointer['why']}")
    figures = pointer.get("comparison")
    if figures:
        split = figures["split"]
        worse = [v["other"] for v in figures["versus"] if v["significant"] and v["accuracy_difference"] > 0]
        print(f"  {split} accuracy {figures['accuracy']:.4f} macro-F1 {figures['macro_f1']:.4f}; significantly "
              f"better (McNemar p < 0.05) than: {', '.join(worse) or 'none'}")
    print(f"  written to {out}/best.json: `predict --model {out}` uses it (--no-follow: the BERT itself)")
