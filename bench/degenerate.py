#!/usr/bin/env python3
"""The random small-set property test of ``tests/test_conformance.py`` at scale: thousands of fits.

Each example draws a kind (every registered kind but the ensemble, each with its ``quick_settings``,
the settings the conformance checks use) and a random small labeled set
(:func:`cls_app.testing.random_set`: 4-60 rows over 2-5 labels from a small alphabet, so duplicates and
texts with two labels are common; a dev set half the time), then
:func:`cls_app.testing.fits_or_refuses`: the kind fits, with finite outputs that survive a save and
load, or refuses with one ``UserError`` line. Anything else is a crash, recorded with the seed that
reproduces it. Results: ``OUT/degenerate.json`` (counts per kind, every crash).

    python bench/degenerate.py --out bench/results/degenerate --examples 5000
    python bench/degenerate.py --out bench/results/degenerate --kinds char_svm fasttext --examples 500
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cls_app.models.base import all_kinds  # noqa: E402
from cls_app.testing import KindUnderTest, fits_or_refuses, random_set  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--examples", type=int, default=5000)
    ap.add_argument("--kinds", nargs="+", help="default: every registered kind but the ensemble")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    kinds = args.kinds or sorted(k for k, c in all_kinds().items() if not c.combines)
    under = {k: KindUnderTest(k, dict(all_kinds()[k].quick_settings)) for k in kinds}
    rng = random.Random(args.seed)
    counts: dict[str, Counter[str]] = {k: Counter() for k in kinds}
    crashes = []
    start = time.perf_counter()
    for i in range(args.examples):
        kind = rng.choice(kinds)
        seed = rng.getrandbits(32)
        texts, labels, dev = random_set(random.Random(seed))
        try:
            outcome = fits_or_refuses(under[kind], texts, labels, dev, f"seed {seed}", twice=False)
        except Exception as exc:  # the thing this bench counts
            outcome = "crash"
            crashes.append({"kind": kind, "seed": seed, "error": f"{type(exc).__name__}: {exc}"[:500],
                            "where": traceback.format_exc(limit=-3)[-1500:]})
        counts[kind][outcome] += 1
        if (i + 1) % 250 == 0:
            total = Counter()
            for c in counts.values():
                total.update(c)
            print(f"{i + 1} examples in {time.perf_counter() - start:.0f} s: {dict(total)}", flush=True)
    total: Counter[str] = Counter()
    for c in counts.values():
        total.update(c)
    result = {"examples": args.examples, "seconds": round(time.perf_counter() - start, 1), "total": dict(total),
              "by_kind": {k: dict(c) for k, c in counts.items()}, "crashes": crashes}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "degenerate.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "crashes"}, indent=1, ensure_ascii=False))
    print(f"{len(crashes)} crashes" + (f"; the first: {crashes[0]['kind']} seed {crashes[0]['seed']}: "
                                       f"{crashes[0]['error']}" if crashes else ""))


if __name__ == "__main__":
    main()
