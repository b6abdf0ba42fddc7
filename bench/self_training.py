#!/usr/bin/env python3
"""Self-training on unlabeled headlines: does ``train --unlabeled`` help the fast models?

The ``thucnews`` set of ``bench/selection.py`` (train 9,000 / dev 1,000 of ``dev.txt``), ``--unlabeled N``
headlines of ``train_100k.txt`` as the unlabeled pool, test on all of ``test.txt``. Each kind is fitted
without and with self-training (kept only while dev improves); the test accuracy of both is printed.

    python bench/self_training.py --unlabeled 30000          # about 5 min on 2 cores
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from task_sets import THUCNEWS  # noqa: E402  (bench/: the script's folder is on sys.path)

from cls_app import TextClassifier  # noqa: E402
from cls_app.io.records import ReadOptions  # noqa: E402
from cls_app.tasks import SingleLabel  # noqa: E402
from cls_app.workflow.self_training import self_train  # noqa: E402

SELECTION = ROOT / "bench" / "results" / "selection" / "thucnews" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--unlabeled", type=int, default=30000)
    ap.add_argument("--kinds", nargs="+", default=["char_svm", "char_lr", "word_nb", "fasttext"])
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    task, opts = SingleLabel(), ReadOptions(text_col="text", label_col="label")
    train, dev = task.read(str(SELECTION / "train.csv"), opts), task.read(str(SELECTION / "dev.csv"), opts)
    test = task.read(str(THUCNEWS / "test.txt"), ReadOptions())
    lines = (THUCNEWS / "train_100k.txt").read_text(encoding="utf-8").splitlines()
    pick = np.random.default_rng(0).choice(len(lines), args.unlabeled, replace=False)
    pool = [lines[i].rpartition("\t")[0] for i in pick]
    rows = {}
    for kind in args.kinds:
        make = functools.partial(TextClassifier, kind=kind, seed=42)
        t0 = time.perf_counter()
        plain = make().fit_records(train, dev, task)
        t1 = time.perf_counter()
        model, report = self_train(make, train, dev, task, pool, "macro_f1")
        t2 = time.perf_counter()
        acc = {name: float(np.mean([p.label == g for p, g in zip(m.predict(test.texts), test.labels, strict=True)]))
               for name, m in (("without", plain), ("with", model))}
        rows[kind] = {"test_accuracy_without": round(acc["without"], 4), "test_accuracy_with": round(acc["with"], 4),
                      "seconds_without": round(t1 - t0, 1), "seconds_with": round(t2 - t1, 1), **report}
        print(json.dumps({"kind": kind, **rows[kind]}), flush=True)
    out = ROOT / "bench" / "results" / "self_training.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
