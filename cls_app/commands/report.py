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


def print_job(result: Any, detail: bool = False) -> None:
    """The main job's report (rank 0): with ``--with-baselines`` one table of the models, the recommendation in
    a sentence, the fast model, what the budget and failures left out, the folder and the next command;
    ``detail`` (``-v``) adds the BERT's test report, the comparison and the recommendation's tests."""
    if not result.is_main:
        return
    if detail or result.plan is None:
        print_bert(result, detail or result.plan is None)
    if result.plan is None:  # a BERT-only run
        print(f"model saved to {result.out}")
        print_next(result.out)
        return
    if detail and result.comparison is not None:
        print_comparison(result.comparison)
    print_models(result)
    rec = result.recommendation
    if rec is not None:
        print(f"recommended: {rec['name']} ({rec['kind']}): {rec.get('reason') or rec['why']}")
        if detail:
            print_recommendation(rec, result.out)
        fast = rec.get("fast")
        if fast and fast["name"] != rec["name"]:
            speeds = models_by_name(result)
            ratio = fast["texts_per_s"] / max(float(speeds.get(rec["name"], {}).get("texts_per_s") or 0.0), 1e-9)
            print(f"fast: {fast['name']} ({fast['texts_per_s']:,.0f} texts/s, {ratio:.1f}x the recommended model's, "
                  f"dev {fast['dev'].get(rec['metric'], 0.0):.4f}): --prefer fast")
    plan = result.plan
    if plan.get("budget_minutes") is not None:
        print(f"time: {plan['elapsed_s'] / 60:.1f} of the {plan['budget_minutes']:g} minutes budgeted"
              + "".join(f"; {s['kind']} stopped early ({s['stopped']})" for s in plan["ran"] if s.get("stopped")))
    for skip in plan.get("skipped", []):
        print(f"skipped: {skip['kind']} ({skip['reason']})")
    for failed in result.skipped:
        print(f"failed and left out: {failed['step']} ({failed['reason']})")
    written = ["best.json"] if rec is not None else []
    if result.comparison is not None:
        written.append(f"{COMPARISON}/report.html")
    print(f"folder: {result.out}" + (f" ({', '.join(written)})" if written else ""))
    print_next(result.out)


COMPARISON = "comparison"


def models_by_name(result: Any) -> dict[str, dict]:
    """The comparison's row of each model (test figures, texts/s, train s), by name; {} without a comparison."""
    if result.comparison is None:
        return {}
    return {m["name"]: m for m in result.comparison.summary["models"]}


def print_models(result: Any) -> None:
    """One row per model: dev (the recommendation's score), test, texts/s, train s; the recommended one first."""
    rows = models_by_name(result)
    rec = result.recommendation or {}
    metric = rec.get("metric", "macro_f1")
    dev = {c.name: c.dev.get(metric) for c in result.candidates}
    names = [f.target.name for f in result.fitted]
    split = result.split
    order = sorted(names, key=lambda n: (n != rec.get("name"), -float(dev.get(n) or -1.0)))
    title = {"macro_f1": "macro-F1", "accuracy": "accuracy", "weighted_f1": "weighted-F1"}.get(metric, metric)
    print(f"{'model':<16}{'kind':<10}{'dev ' + title:>14}{split + ' ' + title:>15}{split + ' acc':>10}"
          f"{'texts/s':>10}{'train s':>9}")
    for name in order:
        row = rows.get(name, {})
        mark = "  recommended" if name == rec.get("name") else "  fast" if name == (rec.get("fast") or {}).get(
            "name") else "  floor" if row.get("floor") else ""

        def cell(value: Any, fmt: str, width: int) -> str:
            return f"{value:{width}{fmt}}" if isinstance(value, int | float) else f"{'–':>{width}}"

        print(f"{name[:15]:<16}{str(row.get('kind', ''))[:9]:<10}{cell(dev.get(name), '.4f', 14)}"
              f"{cell(row.get(metric, row.get('macro_f1')), '.4f', 15)}{cell(row.get('accuracy'), '.4f', 10)}"
              f"{cell(row.get('texts_per_s'), ',.0f', 10)}{cell(row.get('train_seconds'), '.1f', 9)}{mark}")


def print_bert(result: Any, detail: bool) -> None:
    """The BERT's test report (``detail``: with the error analysis) and its training line."""
    from ..evaluation.analysis import format_analysis

    if not result.metrics:
        return
    if result.test is not None:
        name = Path(str(result.test_source)).name
        print_metrics_report(f"test ({name}):", result.test.metrics, result.labels, result.task)
        analysis = format_analysis(result.test.metrics) if detail else ""  # single-label: errors, calibration
        if analysis:
            print("\n" + analysis)
    elif result.best_dev:
        print_metrics_report("dev (best evaluation):", result.best_dev, result.labels, result.task)
    print_train_summary(result.metrics)


def print_next(out: Any) -> None:
    print(f"next: python run.py predict --model {out} --input FILE --output PREDICTIONS.csv   (or --text \"...\")")


def print_comparison(comparison: Any) -> None:
    """The comparison table (Markdown) and where the report went."""
    print(comparison.markdown)
    print(f"report written to {comparison.out}/ ({', '.join(p.name for p in comparison.paths.values())})")


def print_recommendation(pointer: dict, out: Any) -> None:
    """The recommendation in full: why, its held-out figures against the others, where it is."""
    print(f"  {pointer['why']}")
    figures = pointer.get("comparison")
    if figures:
        split = figures["split"]
        worse = [v["other"] for v in figures["versus"] if v["significant"] and v["accuracy_difference"] > 0]
        print(f"  {split} accuracy {figures['accuracy']:.4f} macro-F1 {figures['macro_f1']:.4f}; significantly "
              f"better (McNemar p < 0.05) than: {', '.join(worse) or 'none'}")
    print(f"  {out}/best.json points to {out}/{pointer['path']}: `predict --model {out}` uses it (--no-follow: the "
          "folder's own BERT)")
