#!/usr/bin/env python3
"""A learning curve over training size: the BERT, the best baseline and the recommended model.

    bash ../shared/data/thucnews/get_train_100k.sh                 # once: train_100k.txt
    python bench/data_size.py                                       # 10k, 30k and all 99,876 headlines
    python bench/data_size.py --sizes 10000 30000 --time-limit 20   # smaller, BERT capped at 20 minutes
    python bench/data_size.py --plot-only                           # table and PNG from the saved runs

For each size N the first N headlines of a seeded shuffle of ``train_100k.txt`` (so each set holds
the smaller ones) train the whole ``python run.py train --with-baselines`` with the defaults, in its
own process, with THUCNews ``dev.txt`` and ``test.txt``. The bench records the job's wall time and
peak RSS (``os.wait4`` of that process), and from the run's ``comparison/comparison.json`` and
``best.json``: test macro-F1 / accuracy, train seconds and texts/s of the BERT, of the best
baseline (the baseline kind with the best dev score) and of the recommended model, and McNemar's
test of the BERT against char_svm. Writes ``OUT/data_size.json``, ``OUT/data_size.md`` and
``OUT/data_size.png`` (test macro-F1 and training minutes against training size).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from load_test import cpu_model  # noqa: E402  (bench/: the script's folder is on sys.path)
from task_sets import THUCNEWS  # noqa: E402  (bench/: the script's folder is on sys.path)

SIZES = (10_000, 30_000, 99_876)


def subset(source: Path, n: int, out: Path, seed: int) -> Path:
    """The first ``n`` lines of a seeded shuffle of ``source`` (nested: a smaller n is a prefix)."""
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    if (source.parent / "class.txt").is_file():  # THUCNews layout: label indices, the names beside the file
        shutil.copyfile(source.parent / "class.txt", out.parent / "class.txt")
    return out


def run_size(n: int, args) -> dict:
    folder = args.out / f"n{n}"
    train = subset(args.train, n, folder / "train.txt", args.seed)
    cmd = [sys.executable, "run.py", "train", "--train", str(train), "--dev", str(THUCNEWS / "dev.txt"),
           "--test", str(THUCNEWS / "test.txt"), "--with-baselines", "--out", str(folder / "run"), "--overwrite",
           "--seed", str(args.seed)]
    if args.time_limit:
        cmd += ["--time-limit", str(args.time_limit)]
    print(f"[{time.strftime('%H:%M:%S')}] {n:,} texts: {' '.join(cmd[1:])}", flush=True)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    with open(folder / "job.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the job for {n} texts failed: see {folder / 'job.log'}")
    return {"n": n, "wall_s": round(wall, 1), "peak_rss_gb": round(usage.ru_maxrss / 1024 ** 2, 2),
            **read_run(folder / "run")}


def read_run(run: Path) -> dict:
    comparison = json.loads((run / "comparison" / "comparison.json").read_text(encoding="utf-8"))
    best = json.loads((run / "best.json").read_text(encoding="utf-8"))
    models = {m["name"]: m for m in comparison["models"]}
    versus = best["selection"]["versus_leader"]  # dev: each candidate's distance below the leader

    def row(name: str) -> dict:
        m = models[name]
        return {"name": name, "kind": m["kind"], "test_macro_f1": round(m["macro_f1"], 4),
                "test_accuracy": round(m["accuracy"], 4), "train_s": m.get("train_seconds"),
                "texts_per_s": round(m["texts_per_s"])}

    bert = next(m["name"] for m in comparison["models"] if m["kind"] == "bert")
    baselines = [m["name"] for m in comparison["models"]
                 if m["kind"] not in ("bert", "ensemble") and not m.get("floor")]
    # the leader has no entry: its distance is 0
    best_baseline = min(baselines, key=lambda b: versus.get(b, {}).get("difference", 0.0))
    sig = comparison.get("significance") or {}
    return {"bert": row(bert), "best_baseline": row(best_baseline),
            "char_svm": row("char_svm") if "char_svm" in models else None,
            "recommended": row(best["name"]), "bert_vs_best_baseline": sig}


def write_outputs(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["| training texts | BERT macro-F1 | BERT train min | BERT texts/s | best baseline | its macro-F1 | "
             "recommended | its macro-F1 | its texts/s | job wall min | peak RSS GB |",
             "|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        b, bb, rec = r["bert"], r["best_baseline"], r["recommended"]
        lines.append(f"| {r['n']:,} | {b['test_macro_f1']:.4f} | {b['train_s'] / 60:.1f} | {b['texts_per_s']:,} | "
                     f"{bb['name']} | {bb['test_macro_f1']:.4f} | {rec['name']} | {rec['test_macro_f1']:.4f} | "
                     f"{rec['texts_per_s']:,} | {r['wall_s'] / 60:.1f} | {r['peak_rss_gb']:.2f} |")
    (out / "data_size.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    sizes = [r["n"] for r in rows]
    for key, label, style in (("bert", "BERT (scratch)", "o-"), ("best_baseline", "best baseline", "s--"),
                              ("recommended", "recommended", "^-")):
        ax.plot(sizes, [r[key]["test_macro_f1"] for r in rows], style, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training headlines")
    ax.set_ylabel("test macro-F1 (THUCNews test.txt)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax2.plot(sizes, [r["bert"]["train_s"] / 60 for r in rows], "o-", label="BERT training")
    ax2.plot(sizes, [r["wall_s"] / 60 for r in rows], "^-", label="whole job")
    ax2.set_xscale("log")
    ax2.set_xlabel("training headlines")
    ax2.set_ylabel("minutes (2-core CPU)")
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.suptitle(f"Learning curve, {cpu_model()}")
    fig.tight_layout()
    fig.savefig(out / "data_size.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=THUCNEWS / "train_100k.txt")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--time-limit", type=float, help="--time-limit MINUTES for the BERT of every size")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "data_size")
    ap.add_argument("--plot-only", action="store_true", help="the table and PNG from OUT/data_size.json")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    record = args.out / "data_size.json"
    if args.plot_only:
        rows = json.loads(record.read_text(encoding="utf-8"))["rows"]
    else:
        if not args.train.is_file():
            raise SystemExit(f"{args.train} is missing: run `bash {THUCNEWS / 'get_train_100k.sh'}` first")
        rows = []
        for n in sorted(args.sizes):
            rows.append(run_size(n, args))
            record.write_text(json.dumps({"cpu": cpu_model(), "time_limit": args.time_limit, "rows": rows},
                                         indent=2, ensure_ascii=False), encoding="utf-8")
    write_outputs(rows, args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
