#!/usr/bin/env python3
"""Load test of ``run.py serve``: concurrent clients on loopback, micro-batching on vs off vs offline.

For each server mode (micro-batching on with the serve defaults, then off with ``--max-batch 1``)
this starts ``python run.py serve`` on a free 127.0.0.1 port, lets ``--clients`` concurrent
clients send requests of 1-16 THUCNews test headlines (drawn with a fixed seed) for
``--duration`` seconds, and reports requests/s, texts/s, p50/p95/p99 latency, errors and the
server's mean texts per batch (from ``GET /info``) and the CPU-seconds per second each side
used. Then it measures offline ``Classifier.predict`` throughput on the same texts in this
process, with the same threads: on all texts at once (length-sorted batches, the issue's
reference) and in shuffled calls of the served mean batch size (the batches a server gets).

Bounded: loopback only, at most ``--duration`` seconds and ``--max-requests`` requests per mode.

    python bench/load_test.py --model saved_models/bench_thucnews --threads 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "run.py"), "-q", "serve", "--model", model, "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def own_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


async def run_clients(url: str, texts: list[str], clients: int, duration: float, max_requests: int,
                      per_request: tuple[int, int], seed: int) -> dict:
    import httpx

    latencies: list[float] = []
    counts = {"requests": 0, "texts": 0, "errors": 0}
    stop_at = time.perf_counter() + duration

    async def client(k: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + k)
        while time.perf_counter() < stop_at and counts["requests"] < max_requests:
            batch = [texts[rng.randrange(len(texts))] for _ in range(rng.randint(*per_request))]
            t0 = time.perf_counter()
            try:
                r = await http.post("/predict", json={"texts": batch})
                ok = r.status_code == 200 and len(r.json()["predictions"]) == len(batch)
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            counts["requests"] += 1
            counts["texts"] += len(batch) if ok else 0
            counts["errors"] += 0 if ok else 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
    elapsed = time.perf_counter() - t0
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {"seconds": round(elapsed, 2), "requests": counts["requests"], "errors": counts["errors"],
            "requests_per_s": round(counts["requests"] / elapsed, 1),
            "texts_per_s": round(counts["texts"] / elapsed, 1),
            "p50_ms": round(pct(0.50), 1), "p95_ms": round(pct(0.95), 1), "p99_ms": round(pct(0.99), 1)}


def offline_rate(model: str, texts: list[str], threads: int | None, batch_size: int, chunk: int | None = None,
                 backend: str = "torch", quantize: bool = False) -> float:
    """Texts/s of ``Classifier.predict`` on all texts at once (sorted by length inside, so
    batches hardly pad), or, with ``chunk``, on the same texts shuffled and cut into calls of
    ``chunk`` texts (the batches a server sees); the median of three passes (one pass on two
    shared cores varies by ~10%)."""
    from cls_app import Classifier

    clf = Classifier.load(model, threads=threads, batch_size=batch_size, backend=backend, quantize=quantize)
    clf.predict(texts[:256])
    if chunk:
        shuffled = random.Random(0).sample(texts, len(texts))
        calls = [shuffled[i : i + chunk] for i in range(0, len(shuffled), chunk)]
    else:
        calls = [texts]

    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        for b in calls:
            clf.predict(b)
        passes.append(len(texts) / (time.perf_counter() - t0))
    return sorted(passes)[1]


def main() -> None:
    default_data = ROOT.parent / "shared" / "data" / "thucnews" / "test.txt"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "saved_models" / "bench_thucnews"))
    ap.add_argument("--data", default=str(default_data), help="labeled file whose texts are sent")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per mode")
    ap.add_argument("--max-requests", type=int, default=200_000, help="cap per mode")
    ap.add_argument("--min-texts", type=int, default=1)
    ap.add_argument("--max-texts", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="model threads, server and offline alike")
    ap.add_argument("--serve-args", default="", help="extra serve flags for both modes, e.g. '--backend onnx'")
    ap.add_argument("--skip-off", action="store_true", help="only the micro-batched server (quicker comparisons)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "load_test.json"))
    args = ap.parse_args()

    from cls_app.io.records import load_labeled

    texts = load_labeled(args.data).texts
    threads = ["--threads", str(args.threads)] if args.threads else []
    extra = threads + args.serve_args.split()  # both modes; the last --max-batch wins
    modes = {"micro-batching on": extra, "micro-batching off": [*extra, "--max-batch", "1"]}
    if args.skip_off:
        del modes["micro-batching off"]
    results: dict = {"clients": args.clients, "texts_per_request": [args.min_texts, args.max_texts],
                     "threads": args.threads, "cpu": cpu_model(),
                     "cpu_count": os.cpu_count(), "load_before": os.getloadavg()[0], "modes": {}}
    for name, extra in modes.items():
        port = free_port()
        proc = start_server(args.model, port, extra)
        try:
            url = f"http://127.0.0.1:{port}"
            server_cpu, client_cpu = cpu_seconds(proc.pid), own_cpu_seconds()
            stats = asyncio.run(run_clients(url, texts, args.clients, args.duration, args.max_requests,
                                            (args.min_texts, args.max_texts), args.seed))
            # how the cores were shared during the run: CPU-seconds per wall-second of each side
            stats["server_cpu_per_s"] = round((cpu_seconds(proc.pid) - server_cpu) / stats["seconds"], 2)
            stats["client_cpu_per_s"] = round((own_cpu_seconds() - client_cpu) / stats["seconds"], 2)
            import httpx

            stats["server_batching"] = httpx.get(f"{url}/info", timeout=10).json()["batching"]
        finally:
            stats["server_exit_status"] = stop_server(proc)
        results["modes"][name] = stats
        print(f"{name}: {json.dumps(stats)}", flush=True)
    backend = "onnx" if "onnx" in args.serve_args else "torch"
    quantize = "--quantize" in args.serve_args
    served = args.serve_args.split()
    from cls_app.service.settings import ServeSettings

    served_bs = ServeSettings().batch_size
    if "--batch-size" in served:
        served_bs = int(served[served.index("--batch-size") + 1])
    chunk = max(1, round(results["modes"]["micro-batching on"]["server_batching"]["mean_texts_per_batch"]))
    results["offline"] = f"Classifier.predict (median of 3), {backend}{', int8' if quantize else ''}, batch 64"
    whole = offline_rate(args.model, texts, args.threads, 64, None, backend, quantize)
    chunked = offline_rate(args.model, texts, args.threads, served_bs, chunk, backend, quantize)
    results["offline_texts_per_s"] = round(whole, 1)
    results["offline_served_batches"] = {"texts_per_call": chunk, "batch_size": served_bs,
                                         "texts_per_s": round(chunked, 1)}
    results["load_after"] = os.getloadavg()[0]
    print_table(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"written to {args.out}")


def print_table(results: dict) -> None:
    offline = results["offline_texts_per_s"]
    print(f"\n{results['clients']} clients, {results['texts_per_request'][0]}-{results['texts_per_request'][1]} texts "
          f"per request, {results['threads']} model thread(s), {results['cpu']}, load {results['load_before']:.2f}")
    print("| mode | requests/s | texts/s | vs offline | p50 ms | p95 ms | p99 ms | errors | texts per batch "
          "| CPU s/s server | CPU s/s clients |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s in results["modes"].items():
        print(f"| {name} | {s['requests_per_s']} | {s['texts_per_s']} | {s['texts_per_s'] / offline:.0%} | "
              f"{s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['errors']} | "
              f"{s['server_batching']['mean_texts_per_batch']} | {s['server_cpu_per_s']} | {s['client_cpu_per_s']} |")
    print(f"| offline ({results['offline']}) | | {offline} | 100% | | | | | | | |")
    served = results["offline_served_batches"]
    print(f"| offline, shuffled texts in calls of {served['texts_per_call']}, batch {served['batch_size']} "
          "(what the server computes) | | "
          f"{served['texts_per_s']} | {served['texts_per_s'] / offline:.0%} | | | | | | | |")


if __name__ == "__main__":
    main()
