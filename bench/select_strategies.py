#!/usr/bin/env python3
"""Which texts to label next: the strategies of ``run.py select`` compared on THUCNews, dev splits only.

From THUCNews ``dev.txt`` (10,000 headlines): 1,000 held out for scoring (stratified), 200 labeled to
start (random), the other 8,800 the unlabeled pool. Each strategy picks ``--budget`` texts with a
char_svm trained on the 200 (its labels then revealed), a char_svm is trained on the 200 + picks and
scored on the held-out 1,000; ``--rounds`` rounds of that, ``--seeds`` different starts. No test.txt.

    python bench/select_strategies.py --out bench/results/select_strategies     # about 3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from task_sets import THUCNEWS  # noqa: E402  (bench/: the script's folder is on sys.path)

from cls_app import TextClassifier  # noqa: E402
from cls_app.io.records import LabeledData, ReadOptions  # noqa: E402
from cls_app.tasks import SingleLabel  # noqa: E402
from cls_app.workflow.labeling import STRATEGIES, SelectSettings, choose  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "select_strategies")
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--kind", default="char_svm")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    task = SingleLabel()
    data = task.read(str(THUCNEWS / "dev.txt"), ReadOptions())
    rest, held = task.split(data, 0.1, 42)
    y_held = np.array(held.labels)
    results: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(rest))
        start = [int(i) for i in order[:200]]
        for strategy in STRATEGIES:
            labeled = list(start)
            pool_idx = [int(i) for i in order[200:]]
            curve = []
            for _ in range(args.rounds):
                train = LabeledData([rest.texts[i] for i in labeled], [rest.labels[i] for i in labeled], "start")
                model = TextClassifier(kind=args.kind, seed=seed).fit_records(train, None, task)
                pool = [rest.texts[i] for i in pool_idx]
                picks = choose(model, pool, [rest.texts[i] for i in labeled],
                               SelectSettings(budget=args.budget, strategy=strategy, seed=seed)).picks
                chosen = {p.text for p in picks}
                labeled += [i for i in pool_idx if rest.texts[i] in chosen]
                pool_idx = [i for i in pool_idx if rest.texts[i] not in chosen]
                train = LabeledData([rest.texts[i] for i in labeled], [rest.labels[i] for i in labeled], "after")
                model = TextClassifier(kind=args.kind, seed=seed).fit_records(train, None, task)
                pred = [p.label for p in model.predict(held.texts)]
                curve.append(float(np.mean(np.array(pred) == y_held)))
            results[strategy].append(curve)
            print(json.dumps({"seed": seed, "strategy": strategy, "accuracy_by_round": curve}), flush=True)
    summary = {s: {"mean_by_round": np.mean(v, axis=0).round(4).tolist(), "min_last": round(min(c[-1] for c in v), 4),
                   "max_last": round(max(c[-1] for c in v), 4)} for s, v in results.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "select_strategies.json").write_text(json.dumps({"results": results, "summary": summary}, indent=1))
    heads = [f"accuracy after {200 + args.budget * (r + 1)} labels" for r in range(args.rounds)]
    print("| strategy | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * args.rounds)
    for s, v in summary.items():
        print(f"| {s} | " + " | ".join(f"{a:.4f}" for a in v["mean_by_round"]) + " |")


if __name__ == "__main__":
    main()
