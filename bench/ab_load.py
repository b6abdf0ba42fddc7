#!/usr/bin/env python3
"""``run.py serve`` under Apache ``ab``: an outside client, as a user would measure it.

    apt-get install apache2-utils                       # ab
    python run.py train --no-with-baselines --out saved_models/default   # the default BERT (once)
    python bench/ab_load.py --model saved_models/default
    python bench/ab_load.py --model saved_models/default --keep-alive --serve-args "--max-batch 256"

The server starts with ``python run.py serve --model MODEL`` (its defaults, plus ``--serve-args``)
on a free loopback port; ``ab -c 32 -t 30`` posts one JSON body of 8 reviews from the default
data's test split (seeded) for 30 seconds; ``ab``'s requests/s x 8 is the served texts/s, its
percentiles give p50 and p99, its failed and non-2xx counts the errors. The reference is offline
``Classifier.predict`` with the server's thread policy, on the same 8 texts repeated to 4,096
(one call, length-sorted batches of 64; median of 3 passes), in this process after the server
stopped. Also recorded: the CPU-seconds per second of the server process and of its model
process, and the server's mean texts per batch (``GET /info``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from load_test import cpu_model, cpu_seconds, free_port, offline_rate, start_server, stop_server  # noqa: E402


def children_cpu_seconds(pid: int) -> float:
    """CPU seconds of the direct children of ``pid`` (the model process), from /proc."""
    total = 0.0
    for task in Path("/proc").iterdir():
        if not task.name.isdigit():
            continue
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += cpu_seconds(int(task.name))
    return total


def parse_ab(out: str) -> dict:
    def grab(pattern: str, cast=float, default=0.0):
        m = re.search(pattern, out, re.MULTILINE)
        return cast(m.group(1)) if m else default

    return {
        "requests": grab(r"^Complete requests:\s+(\d+)", int, 0),
        "failed": grab(r"^Failed requests:\s+(\d+)", int, 0),
        "non_2xx": grab(r"^Non-2xx responses:\s+(\d+)", int, 0),
        "requests_per_s": grab(r"^Requests per second:\s+([\d.]+)"),
        "seconds": grab(r"^Time taken for tests:\s+([\d.]+)"),
        "p50_ms": grab(r"^\s+50%\s+(\d+)"), "p90_ms": grab(r"^\s+90%\s+(\d+)"),
        "p99_ms": grab(r"^\s+99%\s+(\d+)"), "max_ms": grab(r"^\s+100%\s+(\d+)"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "saved_models" / "default"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--texts", type=int, default=8, help="texts per request")
    ap.add_argument("--keep-alive", action="store_true", help="ab -k (HTTP keep-alive)")
    ap.add_argument("--serve-args", default="", help="extra serve flags, e.g. '--max-batch 256'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ab_load.json")
    args = ap.parse_args()

    from cls_app.io.default_data import prepare_default_data
    from cls_app.io.records import load_labeled

    pool = load_labeled(str(prepare_default_data()["test"])).texts
    texts = random.Random(args.seed).sample(pool, args.texts)
    load_before = os.getloadavg()[0]
    port = free_port()
    proc = start_server(args.model, port, args.serve_args.split())
    try:
        import httpx

        url = f"http://127.0.0.1:{port}"
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
            json.dump({"texts": texts}, f, ensure_ascii=False)
            body = f.name
        cmd = ["ab", "-q", "-c", str(args.clients), "-t", str(args.seconds), "-n", "10000000", "-s", "60",
               "-p", body, "-T", "application/json", *(["-k"] if args.keep_alive else []), f"{url}/predict"]
        server0, model0 = cpu_seconds(proc.pid), children_cpu_seconds(proc.pid)
        ab = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if ab.returncode != 0:
            raise SystemExit(f"ab failed ({ab.returncode}): {ab.stderr[-1500:]}")
        stats = parse_ab(ab.stdout)
        wall = stats["seconds"] or args.seconds
        stats["server_cpu_per_s"] = round((cpu_seconds(proc.pid) - server0) / wall, 2)
        stats["model_process_cpu_per_s"] = round((children_cpu_seconds(proc.pid) - model0) / wall, 2)
        stats["batching"] = httpx.get(f"{url}/info", timeout=10).json()["batching"]
    finally:
        stats_exit = stop_server(proc)
        os.unlink(body)
    offline = offline_rate(args.model, texts * 512, None, 64)  # one call, batch 64, the thread policy
    served = stats["requests_per_s"] * args.texts
    result = {"cpu": cpu_model(), "load_before": load_before, "command": " ".join(cmd[:-1] + ["URL/predict"]),
              "serve_args": args.serve_args, "texts_per_request": args.texts, "ab": stats,
              "served_texts_per_s": round(served, 1), "offline_texts_per_s": round(offline, 1),
              "share_of_offline": round(served / offline, 3), "server_exit_status": stats_exit}
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"\n{cpu_model()}: served {served:.0f} texts/s = {served / offline:.0%} of offline {offline:.0f}; "
          f"p50 {stats['p50_ms']:.0f} ms, p99 {stats['p99_ms']:.0f} ms, failed {stats['failed']}, "
          f"non-2xx {stats['non_2xx']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
