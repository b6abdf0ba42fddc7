#!/usr/bin/env python3
"""Choosing the inference precision (``InferenceOptions.precision``) on the bench of sets, dev only.

For each set of ``bench/selection.py`` (run that first): its run's BERT, its recommended model
(``best.json``: an ensemble with that BERT on most sets) and a textcnn fitted here with the defaults
(on the train split less a tenth, that tenth its dev; kept in ``OUT/textcnn_SET`` for the next run)
predict the set's dev rows in fp32 and in bf16 autocast (``--precision fp32`` / ``bf16``). Each
load predicts 200 texts to warm up, then the dev rows twice (the better pass is the texts/s).
The table gives, per model and set, the dev macro-F1
in both, how many decisions bf16 changed, the largest probability difference and the speed ratio.
The rule fixed before measuring: the default becomes bf16 on CPUs with native bf16 only if no set's
dev macro-F1 moves by more than 0.002 for any model and bf16 is faster for every model. It was not
met (one changed decision moved BERT's macro-F1 on a small minority class by 0.012; docs/speed.md),
so the default stays fp32 and bf16 is ``--precision bf16``.

    python bench/precision.py                 # ~8 min on 2 cores (the textcnn fits), ~2 min after
    python bench/precision.py --table         # from OUT/precision.json

Speed figures: run alone on a quiet machine (``uptime`` first).
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
from fast_defaults import read_set  # noqa: E402  (bench/: the script's folder is on sys.path)
from load_test import cpu_model  # noqa: E402
from selection import SETS  # noqa: E402

from cls_app import TextClassifier, load  # noqa: E402
from cls_app.runtime.device import cpu_supports_bf16  # noqa: E402

SELECTION = ROOT / "bench" / "results" / "selection"
PRECISIONS = ("fp32", "bf16")


def measure(folder: Path, texts: list, gold: list[str], follow: bool) -> dict:
    out: dict = {}
    probs = {}
    for precision in PRECISIONS:
        model = load(folder, follow=follow, precision=precision)
        model.score(texts[:200])
        best = 0.0
        for _ in range(2):
            t0 = time.perf_counter()
            scored = model.score(texts)
            best = max(best, len(texts) / (time.perf_counter() - t0))
        probs[precision] = scored.probs
        y = np.array([model.labels.index(x) for x in gold])
        pred = model.task.decide(scored.probs, model.labels)
        out[precision] = {"dev_macro_f1": round(float(model.task.metrics_of(y, pred, model.labels)["macro_f1"]), 4),
                          "texts_per_s": round(best, 1)}
        out["kind"], out[f"pred_{precision}"] = model.kind, pred
    out["changed"] = int((out.pop("pred_fp32") != out.pop("pred_bf16")).sum())
    out["max_prob_diff"] = round(float(np.nanmax(np.abs(probs["fp32"] - probs["bf16"]))), 5)
    out["speedup"] = round(out["bf16"]["texts_per_s"] / out["fp32"]["texts_per_s"], 2)
    return out


def table(result: dict) -> None:
    print(f"CPU: {result['cpu']}; native bf16: {result['native_bf16']}")
    print("| set | model | dev rows | macro-F1 fp32 | bf16 | decisions changed | max prob diff | texts/s fp32 | bf16 |"
          " speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for set_name, rows in result["sets"].items():
        for name, r in rows["models"].items():
            print(f"| {set_name} | {name} ({r['kind']}) | {rows['dev_rows']} | {r['fp32']['dev_macro_f1']:.4f} | "
                  f"{r['bf16']['dev_macro_f1']:.4f} | {r['changed']} | {r['max_prob_diff']} | "
                  f"{r['fp32']['texts_per_s']:,.0f} | {r['bf16']['texts_per_s']:,.0f} | {r['speedup']}x |")
    for name in ("bert", "recommended", "textcnn"):
        moves = [r["models"][name]["bf16"]["dev_macro_f1"] - r["models"][name]["fp32"]["dev_macro_f1"]
                 for r in result["sets"].values()]
        speed = [r["models"][name]["speedup"] for r in result["sets"].values()]
        print(f"{name}: macro-F1 change mean {np.mean(moves):+.4f}, range {min(moves):+.4f} .. {max(moves):+.4f}; "
              f"speed-up {min(speed)}x .. {max(speed)}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "precision")
    ap.add_argument("--table", action="store_true", help="print the table of the last run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result_file = args.out / "precision.json"
    if args.table:
        table(json.loads(result_file.read_text(encoding="utf-8")))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"cpu": cpu_model(), "native_bf16": cpu_supports_bf16(), "sets": {}}
    for set_name in SETS:
        task, train, dev, pair_col = read_set(set_name)
        cnn = args.out / f"textcnn_{set_name}"
        if not (cnn / "classifier.json").exists():
            order = np.random.default_rng(0).permutation(len(train))  # as fast_defaults: a tenth of train as its dev
            inner, rest = sorted(order[: max(1, len(train) // 10)].tolist()), sorted(order[len(train) // 10:].tolist())
            TextClassifier(kind="textcnn").fit_records(train.subset(rest), train.subset(inner), task,
                                                       text_pair_col=pair_col).save(cnn)
        texts, gold = list(dev.texts), list(dev.labels)
        run = SELECTION / set_name / "run"
        models = {"bert": measure(run, texts, gold, follow=False), "recommended": measure(run, texts, gold, True),
                  "textcnn": measure(cnn, texts, gold, True)}
        result["sets"][set_name] = {"dev_rows": len(texts), "models": models}
        print(set_name, {k: (v["changed"], v["speedup"]) for k, v in models.items()}, flush=True)
    result_file.write_text(json.dumps(result, indent=1), encoding="utf-8")
    table(result)


if __name__ == "__main__":
    main()
