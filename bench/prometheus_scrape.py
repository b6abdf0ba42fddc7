#!/usr/bin/env python3
"""A real Prometheus scraping a real ``serve``, and the cost of the metrics to serving throughput.

Needs Debian's ``prometheus`` (``apt-get install prometheus``; not a CI dependency). With a model folder
(default: a char_svm fitted here on THUCNews ``dev.txt``) it:

1. starts ``run.py serve --port P`` and a Prometheus (its own config and data folder under OUT) scraping
   ``/metrics`` every second, sends ``--requests`` requests of 16 headlines from 8 client threads, waits
   for three scrapes, and asks Prometheus' HTTP API for the scrape target's health and last error, and
   for ``cls_texts_total`` and ``cls_drift`` (what a dashboard would plot);
2. measures the throughput (texts/s) of the same load with ``--no-metrics`` and with the metrics on,
   alternating ``--rounds`` times on the same server build.

Results: ``OUT/prometheus.json``.

    python bench/prometheus_scrape.py --out bench/results/prometheus
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from load_test import free_port, start_server  # noqa: E402
from task_sets import headlines  # noqa: E402


def fit_model(out: Path) -> Path:
    from cls_app import TextClassifier

    folder = out / "char_svm"
    if not folder.is_dir():
        rows = headlines("dev")
        TextClassifier(kind="char_svm", seed=42).fit([t for t, _ in rows[1000:]], [c for _, c in rows[1000:]],
                                                     dev=([t for t, _ in rows[:1000]], [c for _, c in rows[:1000]])
                                                     ).save(folder)
    return folder


def load(port: int, texts: list[str], requests: int, clients: int = 8) -> float:
    """Texts/s of ``requests`` requests of 16 texts from ``clients`` threads."""
    url = f"http://127.0.0.1:{port}/predict"
    batches = [texts[(i * 16) % (len(texts) - 16):][:16] for i in range(requests)]
    client = httpx.Client(timeout=30)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for r in pool.map(lambda b: client.post(url, json={"texts": b}), batches):
            r.raise_for_status()
    return requests * 16 / (time.perf_counter() - start)


def wait_ready(prom: int) -> None:
    """Until Prometheus answers /-/ready (its storage opened, the scrape loop started)."""
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{prom}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("prometheus did not become ready in 60 s")


def scraped_after(target: dict, when: float) -> bool:
    """The target's last scrape (RFC 3339 time) is later than ``when`` (epoch seconds)."""
    from datetime import datetime

    last = re.sub(r"(\.\d{6})\d+", r"\1", str(target.get("lastScrape", "")))  # nanoseconds: to microseconds
    try:
        return datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() > when
    except ValueError:
        return False


def query(prom: int, expr: str) -> list:
    r = httpx.get(f"http://127.0.0.1:{prom}/api/v1/query", params={"query": expr}, timeout=5)
    return r.json()["data"]["result"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("prometheus") is None:
        raise SystemExit("needs Debian's prometheus: apt-get install prometheus")
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model or fit_model(args.out)
    texts = [t for t, _ in headlines("test")]
    port, prom_port = free_port(), free_port()
    server = start_server(str(model.resolve()), port, [])
    config = args.out / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cls_app\n    static_configs:\n"
                      f"      - targets: ['127.0.0.1:{port}']\n", encoding="utf-8")
    data = args.out / "prometheus_data"
    shutil.rmtree(data, ignore_errors=True)
    prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    result: dict = {}
    try:
        wait_ready(prom_port)
        load(port, texts, args.requests)
        loaded = time.time()
        active = []
        for _ in range(120):  # until a scrape after the load has succeeded (then the counters hold the load)
            active = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/targets", timeout=5).json()["data"][
                "activeTargets"]
            if active and all(t["health"] == "up" and scraped_after(t, loaded + 1.0) for t in active):
                break
            time.sleep(0.5)
        result["targets"] = [{"health": t["health"], "lastError": t["lastError"], "scrapeUrl": t["scrapeUrl"]}
                             for t in active]
        result["cls_texts_total"] = query(prom_port, "sum(cls_texts_total)")
        result["cls_drift"] = query(prom_port, "cls_drift")
        result["scrape_samples"] = query(prom_port, "scrape_samples_scraped")
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        server.terminate()
        server.wait(timeout=60)
    speeds: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for mode, flags in (("off", ["--no-metrics"]), ("on", [])):
            p = free_port()
            proc = start_server(str(model.resolve()), p, flags)
            try:
                load(p, texts, 50)  # warm up
                speeds[mode].append(load(p, texts, args.requests))
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    result["texts_per_s"] = {k: [round(v) for v in vals] for k, vals in speeds.items()}
    result["ratio_on_off"] = round(statistics.median(speeds["on"]) / statistics.median(speeds["off"]), 3)
    (args.out / "prometheus.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
