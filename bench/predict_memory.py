#!/usr/bin/env python3
"""Peak memory of ``run.py predict`` on a 10k-row and a 1M-row CSV: it should stay flat.

Builds a tiny model (1 layer, hidden 32; random weights: memory does not depend on them),
writes two CSVs of the same kind of rows (id, a 5-40 character Chinese text, a note column)
into a temporary folder, and runs ``predict`` on each in a fresh subprocess that reports its
own peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``). Streaming
prediction holds one chunk of rows at a time, so the two peaks should be within 10%.

Usage (not part of the tests; the 1M-row run takes a few minutes on a busy 2-core machine)::

    python bench/predict_memory.py [--rows 10000 1000000] [--chunk-size 8192]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHARS = "这个手机电影酒店服务质量价格好差快慢推荐失望喜欢满意退货物流包装客服味道环境屏幕电池"

CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from cls_app.commands import main
t0 = time.perf_counter()
code = main({argv!r})
seconds = time.perf_counter() - t0
print("RESULT", code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds, file=sys.stderr)
sys.exit(code)
"""


def make_model(folder: Path) -> Path:
    import torch

    from cls_app.modeling.bert import BertClassifier, scratch_config
    from cls_app.modeling.folder import save_model_dir
    from cls_app.text.tokenizer import CharTokenizer

    torch.manual_seed(0)
    tokenizer = CharTokenizer.build([CHARS])
    model = BertClassifier(scratch_config(len(tokenizer), ["neg", "pos"], layers=1, hidden=32, heads=2))
    return save_model_dir(model, tokenizer, folder, {"max_len": 64})


def make_csv(path: Path, rows: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("id,text,note\n")
        for i in range(rows):
            text = "".join(rng.choices(CHARS, k=rng.randint(5, 40)))
            fh.write(f"{i},{text},n{i % 97}\n")
    return path


def run_predict(model: Path, src: Path, out: Path, chunk: int, threads: int | None) -> dict:
    argv = ["-q", "predict", "--model", str(model), "--input", str(src), "--output", str(out),
            "--chunk-size", str(chunk)]
    if threads:
        argv += ["--threads", str(threads)]
    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), argv=argv)],
                          capture_output=True, text=True)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"predict failed on {src}:\n{proc.stderr[-2000:]}")
    _, code, maxrss_kib, seconds = line.split()
    match = re.search(r"in ([0-9.]+)s", proc.stdout)  # "wrote N rows to F in Xs (R rows/s)"
    return {"rows": None, "peak_rss_mib": round(int(maxrss_kib) / 1024, 1), "seconds": round(float(seconds), 1),
            "predict_seconds": float(match.group(1)) if match else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--chunk-size", type=int, default=8192)
    ap.add_argument("--threads", type=int, help="passed to predict (default: predict's choice)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "predict_memory.json"))
    args = ap.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_model(tmp / "model")
        for n in args.rows:
            t0 = time.perf_counter()
            src = make_csv(tmp / f"in_{n}.csv", n)
            made = time.perf_counter() - t0
            out = tmp / f"out_{n}.csv"
            r = run_predict(model, src, out, args.chunk_size, args.threads)
            with open(out, encoding="utf-8") as fh:
                written = sum(1 for _ in fh) - 1
            r.update(rows=n, rows_written=written, input_mib=round(src.stat().st_size / 2**20, 1),
                     rows_per_s=round(n / r["predict_seconds"], 0) if r["predict_seconds"] else None)
            results.append(r)
            print(f"{n:>9,d} rows ({r['input_mib']} MiB, made in {made:.0f}s): peak RSS {r['peak_rss_mib']} MiB, "
                  f"{r['seconds']}s in all, predict {r['predict_seconds']}s ({r['rows_per_s']:.0f} rows/s), "
                  f"{written:,d} rows written", flush=True)
            src.unlink()
            out.unlink()
    small, large = results[0], results[-1]
    growth = large["peak_rss_mib"] / small["peak_rss_mib"] - 1
    verdict = "flat (within 10%)" if abs(growth) <= 0.10 else "NOT flat"
    print(f"peak RSS {large['rows']:,d} rows vs {small['rows']:,d} rows: {growth:+.1%} -> {verdict}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    from cls_app.fileio import write_json

    write_json(args.out, {"chunk_size": args.chunk_size, "runs": results, "growth": round(growth, 4),
                          "flat_within_10pct": abs(growth) <= 0.10})
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
