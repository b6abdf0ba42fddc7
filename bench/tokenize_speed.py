#!/usr/bin/env python3
"""Tokenizer throughput on 1M short texts, on one core, and what the token-id cache saves.

    python bench/tokenize_speed.py                  # 1M texts, pinned to core 0
    python bench/tokenize_speed.py --n 200000 --core -1   # fewer texts, no pinning

The texts are THUCNews headlines (``../shared/data/thucnews``) recombined at random (first
half of one headline + second half of another), so they are short news-like Chinese texts
that do not repeat.  The vocab is built from the headlines themselves.  Printed figures:
``CharTokenizer.encode_batch`` texts/s and tokens/s, the cache's content hash, packing into the
flat layout, writing the cache and reading it back (memory-mapped) on a second call.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from task_sets import THUCNEWS  # noqa: E402  (the one place of the data folder)

from cls_app.text.long_text import LongTextOptions, encode_texts  # noqa: E402
from cls_app.text.token_cache import TokenIds, get_or_build, texts_digest  # noqa: E402
from cls_app.text.tokenizer import CharTokenizer  # noqa: E402


def make_texts(n: int, seed: int, data_dir: Path) -> tuple[list[str], list[str]]:
    """``n`` recombined headlines, and the original headlines."""
    lines = []
    for name in ("dev.txt", "test.txt", "train.txt"):
        path = data_dir / name
        if path.is_file():
            with open(path, encoding="utf-8") as fh:
                lines.extend(line.split("\t")[0] for line in fh if line.strip())
    if not lines:
        sys.exit(f"no THUCNews files in {data_dir}")
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        a, b = rng.choice(lines), rng.choice(lines)
        texts.append(a[: len(a) // 2] + b[len(b) // 2 :])
    return texts, lines


def timed(fn):
    """Run ``fn``; return its result and the CPU seconds this process spent on it.

    CPU time, not wall time: on a machine shared with other work, wall time measures the
    other work too.  The tokenizer is single-threaded pure Python, so CPU seconds are
    seconds on one core.
    """
    w, t = time.perf_counter(), time.process_time()
    out = fn()
    cpu, wall = time.process_time() - t, time.perf_counter() - w
    timed.wall = wall
    return out, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="number of texts (default 1M)")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--core", type=int, default=0, help="pin to this CPU core (-1: no pinning)")
    ap.add_argument("--repeat", type=int, default=2, help="encode runs; the best is reported")
    ap.add_argument("--data", type=Path, default=THUCNEWS)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.core >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    texts, lines = make_texts(args.n, args.seed, args.data)
    tok = CharTokenizer.build(lines, min_freq=1)
    chars = sum(map(len, texts))
    print(f"{len(texts):,} texts, {chars / len(texts):.1f} chars on average, vocab {len(tok):,}, "
          f"core {'any' if args.core < 0 else args.core}")

    print("figures per CPU second of this process (= one core); wall time in brackets")
    best, best_wall = float("inf"), float("inf")
    for _ in range(args.repeat):
        ids, dt = timed(lambda: tok.encode_batch(texts, args.max_len))
        best, best_wall = min(best, dt), min(best_wall, timed.wall)
    n_tokens = sum(map(len, ids))
    print(f"encode_batch:        {len(texts) / best:>12,.0f} texts/s  {n_tokens / best:>12,.0f} tokens/s  "
          f"({best:.2f}s CPU, {len(texts) / best_wall:,.0f} texts/s wall)")
    opts = LongTextOptions()
    _, dt = timed(lambda: encode_texts(tok, texts, args.max_len, opts))
    print(f"encode_texts (train): {len(texts) / dt:>11,.0f} texts/s  (the pipeline's path, head truncation)")
    _, dt = timed(lambda: texts_digest(texts))
    print(f"content hash:        {len(texts) / dt:>12,.0f} texts/s  ({dt:.2f}s)")
    _, dt = timed(lambda: TokenIds.from_lists(ids))
    print(f"pack to flat arrays: {len(texts) / dt:>12,.0f} texts/s  ({dt:.2f}s)")

    cache = Path(tempfile.mkdtemp(prefix="tok_cache_"))
    try:
        _, dt_build = timed(lambda: get_or_build(texts, tok, args.max_len, cache))
        print(f"cache miss (hash + encode + pack + write): {dt_build:.2f}s CPU")
        hit, dt_hit = timed(lambda: get_or_build(texts, tok, args.max_len, cache))
        ratio = dt_build / max(dt_hit, 1e-3)
        print(f"cache hit  (hash + memory-mapped open):    {dt_hit:.2f}s CPU ({ratio:.0f}x less)")
        assert all(list(hit[i]) == ids[i] for i in range(0, len(ids), max(1, len(ids) // 1000)))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
