#!/usr/bin/env python3
"""Abstaining on texts outside the label set: how well each model kind's out-of-domain score and rule work.

1. **Held-out classes**: the whole ``train --with-baselines`` (defaults) on THUCNews ``dev.txt`` without
   two classes (game, entertainment; 10 % of the rest held out as dev for the thresholds), then every
   model scores all of ``test.txt``: 8,000 headlines of known classes and 2,000 of the held-out ones.
   Per model: AUROC of its out-of-domain score and of ``1 - max probability`` (known vs held-out),
   and at the rule fitted on dev, the share of held-out headlines abstained and of known ones answered.
2. **Junk**: 240 texts made here (random Latin words, digits, emoji, punctuation runs, English sentences,
   other scripts, mixed): the share each model abstains on.
3. **All 10 classes**: the ``thucnews`` run of ``bench/selection.py`` (train on ``dev.txt``), scored on
   ``test.txt``: accuracy on every row against the accuracy of the 90 % most confident (selective
   accuracy) and AURC; with ``--selection-run`` pointing elsewhere, that run.
4. **Cost**: predict texts/s of each model with and without its out-of-domain score, same process.

    python bench/open_set.py --out bench/results/open_set      # about 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from load_test import cpu_model  # noqa: E402  (bench/: the script's folder is on sys.path)
from task_sets import (
    headlines,  # noqa: E402
)

from cls_app.evaluation.selective import auroc, risk_coverage, selective_accuracy  # noqa: E402
from cls_app.io.records import DataOptions  # noqa: E402
from cls_app.models.base import load_folder  # noqa: E402
from cls_app.models.options import InferenceOptions  # noqa: E402
from cls_app.training.settings import BertSettings, TrainJob, TrainSettings  # noqa: E402
from cls_app.workflow.main_job import run_main_job  # noqa: E402
from cls_app.workflow.settings import JobSettings  # noqa: E402

HELD_OUT = ("game", "entertainment")


def write(path: Path, rows: list[tuple[str, str]]) -> str:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return str(path)


def junk_texts(n: int = 240, seed: int = 0) -> list[str]:
    """Texts no Chinese news classifier should answer: 8 families, n / 8 each."""
    rng = random.Random(seed)
    latin = "abcdefghijklmnopqrstuvwxyz"
    english = ["hello world how are you", "the quick brown fox jumps over the lazy dog", "please call me back tomorrow",
               "I would like to order a pizza", "what time is the meeting", "this is a test message",
               "the weather is nice today", "click here to unsubscribe", "thank you for your purchase",
               "error 404 page not found", "lorem ipsum dolor sit amet", "see you at the airport"]
    emoji = "😀😂😍🎉👍🔥🙏💯🚀🌈🍕⚽🎵💔😭🤔"
    punct = "!?.,;:~*#@%&()[]{}<>-_=+/\\|…—"
    scripts = ["Привет как дела сегодня", "こんにちは世界、元気ですか", "안녕하세요 반갑습니다", "مرحبا كيف حالك",
               "สวัสดีครับ ยินดีต้อนรับ", "Γειά σου κόσμε", "नमस्ते आप कैसे हैं", "שלום עולם מה שלומך"]
    families = [
        lambda: " ".join("".join(rng.choice(latin) for _ in range(rng.randint(2, 8)))
                         for _ in range(rng.randint(2, 6))),
        lambda: "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 16))),
        lambda: "".join(rng.choice(emoji) for _ in range(rng.randint(2, 10))),
        lambda: "".join(rng.choice(punct) for _ in range(rng.randint(3, 15))),
        lambda: rng.choice(english) + rng.choice(["", "!", "?", " :)", " 123"]),
        lambda: rng.choice(scripts) + rng.choice(["", "!", "?", " 1"]),
        lambda: " ".join(rng.choice(["ok", "lol", "asdf", "qwerty", "xyz", "test", "123", "!!!", "???"])
                         for _ in range(rng.randint(2, 5))),
        lambda: "".join(rng.choice(latin + "0123456789" + punct) for _ in range(rng.randint(5, 20))),
    ]
    return [families[i % len(families)]() for i in range(n)]


def model_folders(run: Path) -> dict[str, Path]:
    """The run's BERT, baselines (not the floor) and ensemble, and which one best.json recommends."""
    out = {"bert": run}
    for d in sorted((run / "baselines").iterdir()):
        if d.is_dir() and d.name != "majority":
            out[d.name] = d
    if (run / "ensemble").is_dir():
        out["ensemble"] = run / "ensemble"
    return out


def timed_score(model, texts: list[str]) -> tuple[object, float]:
    t0 = time.perf_counter()
    outputs = model.score(texts)
    return outputs, len(texts) / (time.perf_counter() - t0)


def open_set(out: Path, threads: int | None, reuse: bool = False) -> dict:
    train_rows = [r for r in headlines("dev") if r[1] not in HELD_OUT]
    rng = random.Random(42)
    rng.shuffle(train_rows)
    cut = len(train_rows) // 10
    files = {"train": write(out / "data" / "train.csv", train_rows[cut:]),
             "dev": write(out / "data" / "dev.csv", train_rows[:cut])}
    data = DataOptions(train=files["train"], dev=files["dev"], text_col="text", label_col="label")
    job = TrainJob(data=data, bert=BertSettings(train=TrainSettings(), threads=threads, cache_dir=None),
                   out=str(out / "run"), overwrite=True)
    t0 = time.perf_counter()
    if not reuse:
        run_main_job(JobSettings(run=job, with_baselines=True))
    train_seconds = time.perf_counter() - t0
    best = json.loads((out / "run" / "best.json").read_text(encoding="utf-8"))
    test = headlines("test")
    texts = [t for t, _ in test]
    unknown = np.array([lab in HELD_OUT for _, lab in test])
    junk = junk_texts()
    rows = {}
    for name, folder in model_folders(out / "run").items():
        model = load_folder(folder, InferenceOptions(threads=threads))
        outputs, tps = timed_score(model, texts)
        saved, model.abstainer = model.abstainer, None
        _, tps_plain = timed_score(model, texts)
        model.abstainer = saved
        msp = 1.0 - np.nanmax(outputs.probs, axis=1)
        got = model.abstention(outputs)
        junk_got = model.abstention(model.score(junk))
        known_labels = np.array([lab for _, lab in test])
        conf, pred = model.task.answer(outputs.probs, model.labels)
        correct = np.array([model.labels[p] == g for p, g in zip(pred, known_labels, strict=True)])
        k = ~unknown
        rows[name] = {
            "recommended": (folder.resolve() == (out / "run" / best["path"]).resolve()),
            "ood_method": model.abstainer.scorer.describe()["method"] if model.abstainer else None,
            "auroc_ood_score": round(auroc(outputs.ood[k], outputs.ood[unknown]), 4),
            "auroc_max_prob": round(auroc(msp[k], msp[unknown]), 4),
            "held_out_abstained": round(float(got.abstained[unknown].mean()), 4),
            "held_out_abstained_as_ood": round(float(np.mean([got.reason[i] == "out of domain"
                                                              for i in np.flatnonzero(unknown)])), 4),
            "known_answered": round(float((~got.abstained[k]).mean()), 4),
            "known_accuracy_answered": round(float(correct[k & ~got.abstained].mean()), 4),
            "known_accuracy_all": round(float(correct[k].mean()), 4),
            "junk_abstained": round(float(junk_got.abstained.mean()), 4),
            "texts_per_s": round(tps, 1), "texts_per_s_without_ood": round(tps_plain, 1),
            "rule": model.abstainer.rule.to_json() if model.abstainer else None,
        }
        print(json.dumps({"model": name, **{k: v for k, v in rows[name].items() if k != "rule"}}), flush=True)
    return {"train_seconds": round(train_seconds, 1), "held_out": list(HELD_OUT), "test_rows": len(test),
            "held_out_rows": int(unknown.sum()), "junk_rows": len(junk), "models": rows}


def all_classes(run: Path, threads: int | None) -> dict:
    """Selective accuracy of the 10-class models of a saved run (no abstention rule needed)."""
    if not run.is_dir():
        return {"skipped": f"{run} not found: run bench/selection.py --sets thucnews first"}
    test = headlines("test")
    texts, gold = [t for t, _ in test], [lab for _, lab in test]
    rows = {}
    for name, folder in model_folders(run).items():
        model = load_folder(folder, InferenceOptions(threads=threads))
        probs = model.predict_proba(texts)
        conf, pred = model.task.answer(probs, model.labels)
        correct = np.array([model.labels[p] == g for p, g in zip(pred, gold, strict=True)])
        _, risk = risk_coverage(conf, correct)
        rows[name] = {"accuracy": round(float(correct.mean()), 4),
                      "selective_accuracy_at_90": round(selective_accuracy(conf, correct), 4),
                      "aurc": round(float(risk.mean()), 4)}
        print(json.dumps({"model": name, **rows[name]}), flush=True)
    return {"run": str(run), "models": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "open_set")
    ap.add_argument("--selection-run", type=Path, default=ROOT / "bench" / "results" / "selection" / "thucnews" / "run")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-train", action="store_true", help="part 3 only (selective accuracy of a saved run)")
    ap.add_argument("--reuse-run", action="store_true", help="score the models of OUT/run as they are (refit their "
                    "abstention first with `run.py abstain` to try another score), train nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"cpu": cpu_model()}
    if not args.skip_train:
        result["open_set"] = open_set(args.out, args.threads, args.reuse_run)
    result["all_classes"] = all_classes(args.selection_run, args.threads)
    (args.out / "open_set.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"written to {args.out / 'open_set.json'}")


if __name__ == "__main__":
    main()
