#!/usr/bin/env python3
"""``predict --engine ray`` against the plain ``predict`` on one machine: the same output, the speed, a resumed run.

The input is ``--rows`` THUCNews headlines (default 200,000: ``train_100k``, ``dev.txt`` and ``test.txt``
repeated in order) as a CSV. For each model folder given (default: a char_svm and a textcnn fitted here on
``dev.txt``; pass a BERT folder too) it runs, one after the other on a quiet machine:

1. ``run.py predict`` (the plain engine: this process, the thread policy's threads);
2. ``run.py predict --engine ray`` (a local Ray started by the command, one replica per core);
3. ``--engine ray`` again, killed (SIGKILL) after ``--kill-after`` seconds, then the same command once more:
   it resumes, and the output must still be the plain one's.

Recorded: each run's wall (the whole command, Ray's start included) and texts/s, whether the outputs match
(every row and column; probabilities within 1e-6), and how many rows the resumed run did not score again.
Results: ``OUT/ray_predict.json``; ``--table`` prints them.

    python bench/ray_predict.py --out bench/results/ray_predict
    python bench/ray_predict.py --out bench/results/ray_predict --models saved_models/thucnews --rows 50000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from task_sets import headlines  # noqa: E402


def build_input(path: Path, rows: int) -> None:
    pool = [t for split in ("train_100k", "dev", "test") for t, _ in headlines(split)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i in range(rows):
            w.writerow([i, pool[i % len(pool)]])


def fit_models(out: Path) -> list[Path]:
    from cls_app import TextClassifier

    rows = headlines("dev")
    train, dev = rows[1000:], rows[:1000]
    folders = []
    for kind in ("char_svm", "textcnn"):
        folder = out / "models" / kind
        if not folder.is_dir():
            TextClassifier(kind=kind, seed=42).fit([t for t, _ in train], [c for _, c in train],
                                                   dev=([t for t, _ in dev], [c for _, c in dev])).save(folder)
        folders.append(folder)
    return folders


def command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), "-q", "predict", *args]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def same_output(a: Path, b: Path) -> tuple[bool, float]:
    """Every row and column equal, probabilities (numbers) within 1e-6; the largest difference seen."""
    worst = 0.0
    with a.open(encoding="utf-8", newline="") as fa, b.open(encoding="utf-8", newline="") as fb:
        ra, rb = csv.reader(fa), csv.reader(fb)
        for x, y in zip(ra, rb, strict=True):
            if len(x) != len(y):
                return False, float("inf")
            for u, v in zip(x, y, strict=True):
                if u == v:
                    continue
                try:
                    worst = max(worst, abs(float(u) - float(v)))
                except ValueError:
                    return False, float("inf")
    return worst <= 1e-6, worst


def run_model(folder: Path, source: Path, rows: int, out: Path, kill_after: float) -> dict:
    name = folder.name
    plain, ray_out, resumed = out / f"{name}.plain.csv", out / f"{name}.ray.csv", out / f"{name}.resumed.csv"
    for p in (plain, ray_out, resumed):
        p.unlink(missing_ok=True)
    plain_s = timed(command("--model", str(folder), "--input", str(source), "--output", str(plain)))
    ray_s = timed(command("--model", str(folder), "--input", str(source), "--output", str(ray_out),
                          "--engine", "ray"))
    ok, worst = same_output(plain, ray_out)
    proc = subprocess.Popen(command("--model", str(folder), "--input", str(source), "--output", str(resumed),
                                    "--engine", "ray"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    time.sleep(kill_after)
    os.killpg(proc.pid, signal.SIGKILL)  # the command and its Ray processes, with no time to clean up
    proc.wait()
    subprocess.run(["ray", "stop", "--force"], capture_output=True)  # what a killed driver leaves running
    record = resumed.with_name(resumed.name + ".progress.json")
    before = json.loads(record.read_text(encoding="utf-8"))["rows_written"] if record.is_file() else 0
    start = time.perf_counter()
    done = subprocess.run(command("--model", str(folder), "--input", str(source), "--output", str(resumed),
                                  "--engine", "ray"), capture_output=True, text=True)
    resume_s = time.perf_counter() - start
    ok_resumed, _ = same_output(plain, resumed) if done.returncode == 0 else (False, 0.0)
    result = {"model": str(folder), "rows": rows, "plain_seconds": round(plain_s, 1), "ray_seconds": round(ray_s, 1),
              "plain_texts_per_s": round(rows / plain_s), "ray_texts_per_s": round(rows / ray_s),
              "ratio": round(plain_s / ray_s, 3), "identical": ok, "max_prob_difference": worst,
              "killed_after_s": kill_after, "rows_before_kill": before, "resume_seconds": round(resume_s, 1),
              "resumed_identical": ok_resumed, "resume_output": done.stdout.strip()[-300:]}
    print(json.dumps(result), flush=True)
    return result


def table(results: list[dict]) -> str:
    lines = ["| model | rows | plain texts/s | ray texts/s | ray / plain | identical | killed at rows | resumed "
             "identical |", "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in results:
        lines.append(f"| {Path(r['model']).name} | {r['rows']:,} | {r['plain_texts_per_s']:,} | "
                     f"{r['ray_texts_per_s']:,} | {r['ratio']:.2f} | {r['identical']} | {r['rows_before_kill']:,} | "
                     f"{r['resumed_identical']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", nargs="*", type=Path, help="model folders (default: char_svm and textcnn fitted here)")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--kill-after", type=float, default=25.0, help="seconds before the resumed run's first part dies")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    path = args.out / "ray_predict.json"
    if args.table:
        print(table(json.loads(path.read_text(encoding="utf-8"))))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.out / f"headlines_{args.rows}.csv"
    if not source.is_file():
        build_input(source, args.rows)
    folders = args.models or fit_models(args.out)
    results = [run_model(f, source, args.rows, args.out, args.kill_after) for f in folders]
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
