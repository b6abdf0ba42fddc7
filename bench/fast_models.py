#!/usr/bin/env python3
"""Fast small models on THUCNews: the fasttext and textcnn kinds, and students distilled from the recommended ensemble.

Uses the ``thucnews`` set of ``bench/selection.py`` (its train / dev files: 9,000 / 1,000 headlines of
``dev.txt``; its run's ensemble as the teacher, so run that first), tests on all of ``test.txt``
(10,000). Trains fasttext, textcnn and char_svm with the defaults; distils textcnn and fasttext
students from the teacher on the training texts plus ``--unlabeled N`` headlines of
``train_100k.txt`` (none of them in dev or test). Every model then predicts the test texts in this
process, one after another (texts/s measured the same way: a warm-up call on 200 texts, then the
better of two passes), and McNemar's exact test compares each student with the teacher.
``--reuse`` loads the models already in ``--out`` instead of fitting them again.

    python bench/fast_models.py --out bench/results/fast_models --unlabeled 30000     # ~15 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from load_test import cpu_model  # noqa: E402  (bench/: the script's folder is on sys.path)
from task_sets import THUCNEWS  # noqa: E402  (bench/: the script's folder is on sys.path)

from cls_app import TextClassifier, load  # noqa: E402
from cls_app.evaluation.compare import mcnemar_exact  # noqa: E402
from cls_app.io.records import ReadOptions  # noqa: E402
from cls_app.models.folders import model_size_bytes  # noqa: E402
from cls_app.tasks import SingleLabel  # noqa: E402
from cls_app.workflow.distill import DistillSettings, distill  # noqa: E402

SELECTION = ROOT / "bench" / "results" / "selection" / "thucnews"
STUDENTS = ("textcnn", "fasttext")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fast_models")
    ap.add_argument("--unlabeled", type=int, default=30000, help="headlines of train_100k.txt the teacher labels")
    ap.add_argument("--students", nargs="+", default=list(STUDENTS), choices=STUDENTS,
                    help="the students to distil (default: both)")
    ap.add_argument("--reuse", action="store_true", help="load the models already in --out instead of fitting them")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    task, opts = SingleLabel(), ReadOptions(text_col="text", label_col="label")
    train = task.read(str(SELECTION / "data" / "train.csv"), opts)
    dev = task.read(str(SELECTION / "data" / "dev.csv"), opts)
    test = task.read(str(THUCNEWS / "test.txt"), ReadOptions())
    teacher = load(SELECTION / "run")  # its best.json: the recommended model
    unlabeled = []
    if args.unlabeled:
        lines = (THUCNEWS / "train_100k.txt").read_text(encoding="utf-8").splitlines()
        rng = np.random.default_rng(0)
        unlabeled = [lines[i].rpartition("\t")[0] for i in rng.choice(len(lines), args.unlabeled, replace=False)]
    models: dict[str, TextClassifier] = {"teacher": teacher}
    seconds: dict[str, float] = {"teacher": teacher.train_seconds() or float("nan")}
    spent_file = args.out / "seconds.json"  # training seconds of the models in --out (for --reuse)
    spent = json.loads(spent_file.read_text(encoding="utf-8")) if spent_file.exists() else {}
    for kind in ("fasttext", "textcnn", "char_svm", *(f"{s}_student" for s in args.students)):
        if args.reuse and (args.out / kind).is_dir():
            models[kind] = load(args.out / kind)
            seconds[kind] = float(spent.get(kind) or models[kind].train_seconds() or 0.0)
        elif kind.endswith("_student"):
            done = distill(teacher, train, dev, unlabeled, DistillSettings(student=kind[: -len("_student")]))
            models[kind], seconds[kind] = done.student, done.seconds
            done.student.save(args.out / kind)
        else:
            t0 = time.perf_counter()
            models[kind] = TextClassifier(kind=kind).fit_records(train, dev, task)
            seconds[kind] = time.perf_counter() - t0
            models[kind].save(args.out / kind)
    spent_file.write_text(json.dumps({**spent, **{k: v for k, v in seconds.items() if k != "teacher"}}),
                          encoding="utf-8")
    y = np.array([teacher.labels.index(x) for x in test.labels])
    rows, correct = {}, {}
    for name, model in models.items():
        model.score(test.texts[:200])  # warm: first-call costs (caches, lazy tables) are not throughput
        tps = 0.0
        for _ in range(2):  # the better of two passes
            t0 = time.perf_counter()
            outputs = model.score(test.texts)
            tps = max(tps, len(test) / (time.perf_counter() - t0))
        pred = model.task.decide(outputs.probs, model.labels)
        gold = np.array([model.labels.index(x) for x in test.labels])
        correct[name] = pred == gold
        metrics = model.task.metrics_of(gold, pred, model.labels)
        folder = model.path if name == "teacher" else args.out / name
        rows[name] = {"kind": model.kind, "test_accuracy": round(metrics["accuracy"], 4),
                      "test_macro_f1": round(metrics["macro_f1"], 4), "train_seconds": round(seconds[name], 1),
                      "texts_per_s": round(tps, 1), "size_mb": round(model_size_bytes(folder) / 1e6, 2)}
    del y
    for name in (*(f"{s}_student" for s in args.students), "textcnn", "fasttext"):
        rows[name]["vs_teacher"] = mcnemar_exact(correct[name], correct["teacher"])
        rows[name]["speedup_vs_teacher"] = round(rows[name]["texts_per_s"] / rows["teacher"]["texts_per_s"], 1)
    result = {"cpu": cpu_model(), "unlabeled": len(unlabeled), "test_rows": len(test), "models": rows}
    (args.out / "fast_models.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print("| model | test accuracy | macro-F1 | train s | texts/s | size MB | vs teacher (McNemar p) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        vs = r.get("vs_teacher")
        note = f"{vs['a_right_b_wrong']} vs {vs['a_wrong_b_right']}, p = {vs['p_value']:.3g}" if vs else ""
        print(f"| {name} | {r['test_accuracy']:.4f} | {r['test_macro_f1']:.4f} | {r['train_seconds']} | "
              f"{r['texts_per_s']:,.0f} | {r['size_mb']} | {note} |")


if __name__ == "__main__":
    main()
