#!/usr/bin/env python3
"""The main job under a time budget, on the bench sets of ``bench/selection.py``: wall, the recommended and
the fast model, against the full job.

For each set and each budget (``none`` = the full job, a number of minutes, or a share of the full job's
estimate such as ``50%``) this runs the whole ``train --with-baselines`` with the defaults (in this
process, as ``run.py train`` does; a fresh output folder each time) and records the job's wall time, the
plan (what ran, for how long, what was skipped), the recommended model's dev and test macro-F1 and
texts/s, the fast model's, and every candidate's dev and test macro-F1. Results go to
``OUT/budget.json``; ``--table`` prints the tables from it. Choose a default on the **dev** columns;
the test columns are reported.

    python bench/budget.py --out bench/results/budget                      # every set, none 50% 2 5 10
    python bench/budget.py --out bench/results/budget --sets small --budgets none 30% 50%
    python bench/budget.py --out bench/results/budget --table

Run it alone on a quiet machine (``uptime`` first): the walls are the measurement.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from selection import SETS, build  # noqa: E402

from cls_app.io.records import DataOptions  # noqa: E402
from cls_app.training.settings import BertSettings, TrainJob, TrainSettings  # noqa: E402
from cls_app.workflow.main_job import run_main_job  # noqa: E402
from cls_app.workflow.plan import BudgetSettings  # noqa: E402
from cls_app.workflow.settings import JobSettings  # noqa: E402

METRIC = "macro_f1"
BUDGETS = ("none", "50%", "2", "5", "10")


def run_one(name: str, info: dict, budget: str, out: Path, threads: int | None) -> dict:
    f = info["files"]
    data = DataOptions(train=f["train"], dev=f["dev"], test=f["test"], text_col="text", label_col="label",
                       text_pair_col="text_b" if info["pairs"] else None)
    run = TrainJob(data=data, bert=BertSettings(train=TrainSettings(metric=METRIC), threads=threads, cache_dir=None),
                   out=str(out), overwrite=True)
    job = JobSettings(run=run, with_baselines=True, budget=BudgetSettings(None if budget == "none" else budget))
    start = time.perf_counter()
    result = run_main_job(job)
    wall = time.perf_counter() - start
    rows = {m["name"]: m for m in result.comparison.summary["models"]} if result.comparison else {}
    dev = {c.name: c.dev.get(METRIC) for c in result.candidates}
    rec = result.recommendation or {}
    fast = rec.get("fast") or {}

    def model(n: str | None) -> dict:
        row = rows.get(n or "", {})
        return {"name": n, "dev": dev.get(n or ""), "test": row.get(METRIC), "texts_per_s": row.get("texts_per_s")}

    return {"set": name, "budget": budget, "wall_s": round(wall, 1), "plan": result.plan,
            "recommended": model(rec.get("name")), "fast": model(fast.get("name")),
            "models": {n: {"dev": dev.get(n), "test": r.get(METRIC), "texts_per_s": r.get("texts_per_s"),
                           "kind": r.get("kind")} for n, r in rows.items()},
            "skipped": result.skipped}


def table(results: list[dict]) -> str:
    full = {r["set"]: r for r in results if r["budget"] == "none"}
    lines = ["| set | budget | wall | share of full | recommended | dev | test | test - full's | texts/s | fast | "
             "fast test | fast texts/s | speed-up |", "|---|---|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in results:
        base = full.get(r["set"])
        rec, fast = r["recommended"], r["fast"]
        share = f"{r['wall_s'] / base['wall_s']:.0%}" if base else "–"
        delta = f"{100 * (rec['test'] - base['recommended']['test']):+.2f}" if base and rec["test"] is not None else "–"
        speed = (f"{fast['texts_per_s'] / rec['texts_per_s']:.1f}x" if fast.get("texts_per_s") and rec.get(
            "texts_per_s") else "–")

        def num(v: float | None, fmt: str) -> str:
            return format(v, fmt) if isinstance(v, int | float) else "–"

        lines.append(f"| {r['set']} | {r['budget']} | {r['wall_s'] / 60:.1f} min | {share} | {rec['name']} | "
                     f"{num(rec['dev'], '.4f')} | {num(rec['test'], '.4f')} | {delta} | "
                     f"{num(rec['texts_per_s'], ',.0f')} | {fast.get('name')} | {num(fast.get('test'), '.4f')} | "
                     f"{num(fast.get('texts_per_s'), ',.0f')} | {speed} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    p.add_argument("--budgets", nargs="+", default=list(BUDGETS))
    p.add_argument("--threads", type=int)
    p.add_argument("--table", action="store_true", help="print the tables of OUT/budget.json and stop")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("cls_app.progress").setLevel(logging.INFO)
    path = args.out / "budget.json"
    results = json.loads(path.read_text()) if path.is_file() else []
    if args.table:
        print(table(results))
        return
    for name in args.sets:
        info = build(name, args.out / name / "data")
        for budget in args.budgets:
            label = budget.replace("%", "pct")
            logging.warning("set %s, budget %s", name, budget)
            done = run_one(name, info, budget, args.out / name / f"run_{label}", args.threads)
            results = [r for r in results if (r["set"], r["budget"]) != (name, budget)] + [done]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
            logging.warning("  wall %.1f min, recommended %s test %s", done["wall_s"] / 60,
                            done["recommended"]["name"], done["recommended"]["test"])
    print(table(results))


if __name__ == "__main__":
    main()
