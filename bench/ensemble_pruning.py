#!/usr/bin/env python3
"""Choosing the ensemble's pruning weight (``EnsembleSettings.prune``) on the bench of sets, dev only.

For each set of ``bench/selection.py`` (run that first) the members the main job offers an ensemble
are gathered: the set's BERT and six TF-IDF baselines from its run, and fasttext and textcnn fitted
here with the defaults. Each scores the set's dev and test rows once (timed: seconds per text).
Then, **on dev only**, the dev rows are split in two halves 30 times: the ensemble is fitted on one
half with each pruning weight (members fitted below it dropped, the rest refitted), and its
macro-F1 and log-loss are read on the other, against all members fitted on the same half. The
table gives, per weight, the mean change of held-out dev macro-F1 (mean over sets, and the worst
set), and the members' summed prediction time against all members'. The default is the largest
weight whose mean change stays above ``-0.001`` macro-F1 with no set losing more than 0.005; the
test figures of each weight, fitted on the whole dev split, are printed for the record (they
chose nothing).

    python bench/ensemble_pruning.py                    # ~10 min on 2 cores
    python bench/ensemble_pruning.py --table            # from bench/results/ensemble_pruning/

Results: ``OUT/members_SET.npz`` (the members' dev / test log-probabilities and seconds per text) and
``OUT/pruning.json``.
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
from fast_defaults import SELECTION, SETS, read_set  # noqa: E402  (bench/: the script's folder is on sys.path)
from load_test import cpu_model  # noqa: E402

from cls_app import TextClassifier, load  # noqa: E402
from cls_app.io.records import ReadOptions  # noqa: E402
from cls_app.models.ensemble import EnsembleSettings, combine, fit_ensemble  # noqa: E402
from cls_app.tasks import compute_metrics  # noqa: E402
from cls_app.tasks.calibration import log_loss, log_probs  # noqa: E402

BASELINES = ("char_lr", "char_svm", "char_nb", "word_lr", "word_svm", "word_nb")
TOLERANCES = (0.0, 0.01, 0.03, 0.05, 0.1)  # pruning weights
SPLITS = 30


def gather(name: str, out: Path) -> dict:
    """The members' dev / test log-probabilities (label order of the BERT) and seconds per text."""
    path = out / f"members_{name}.npz"
    if path.exists():
        d = np.load(path, allow_pickle=False)
        return {k: d[k] for k in d.files}
    folder = SELECTION / name
    task, train, dev, pair_col = read_set(name)
    test = task.read(str(folder / "data" / "test.csv"), ReadOptions(text_col="text", label_col="label",
                                                                      text_pair_col=pair_col))
    models: dict[str, TextClassifier] = {"bert": load(folder / "run", follow=False)}
    for b in BASELINES:
        models[b] = load(folder / "run" / "baselines" / b)
    for kind in ("fasttext", "textcnn"):
        models[kind] = TextClassifier(kind=kind).fit_records(train, dev, task, text_pair_col=pair_col)
    labels = list(models["bert"].labels)
    arrays: dict[str, np.ndarray] = {
        "y_dev": np.array([labels.index(x) for x in dev.labels]),
        "y_test": np.array([labels.index(x) for x in test.labels]), "names": np.array(list(models))}
    seconds = []
    for key, model in models.items():
        cols = [list(model.labels).index(x) for x in labels]
        model.score(list(dev.texts[:20]))  # warm
        t0 = time.perf_counter()
        arrays[f"dev/{key}"] = log_probs(model.predict_proba(list(dev.texts))[:, cols])
        seconds.append((time.perf_counter() - t0) / len(dev))
        arrays[f"test/{key}"] = log_probs(model.predict_proba(list(test.texts))[:, cols])
        print(f"{name}: {key} {seconds[-1] * 1e3:.3f} ms/text", flush=True)
    arrays["seconds"] = np.array(seconds)
    np.savez(path, **arrays)
    return arrays


def macro_f1(y: np.ndarray, probs: np.ndarray, k: int) -> float:
    return float(compute_metrics(y, probs.argmax(axis=1), [str(i) for i in range(k)])["macro_f1"])


def held_out(arrays: dict, tol: float, splits: int = SPLITS) -> dict:
    """Pruned vs all members, each fitted on one half of dev and read on the other, ``splits`` times."""
    names = [str(n) for n in arrays["names"]]
    logps = [arrays[f"dev/{n}"] for n in names]
    y, sec = arrays["y_dev"], arrays["seconds"]
    k = logps[0].shape[1]
    rng = np.random.default_rng(0)
    d_f1, d_ll, speed = [], [], []
    for _ in range(splits):
        order = rng.permutation(len(y))
        a, b = order[: len(y) // 2], order[len(y) // 2:]
        scores, kept = {}, []
        for label, value in (("all", 0.0), ("pruned", tol)):
            f = fit_ensemble([lp[a] for lp in logps], y[a], EnsembleSettings(prune=value))
            p = combine([lp[b] for lp in logps], f.weights, f.temperatures)
            scores[label] = (macro_f1(y[b], p, k), log_loss(p, y[b]))
            kept = [i for i, w in enumerate(f.weights) if w > 0]
        d_f1.append(scores["pruned"][0] - scores["all"][0])
        d_ll.append(scores["pruned"][1] - scores["all"][1])
        speed.append(sec.sum() / sec[kept].sum())
    return {"delta_macro_f1": float(np.mean(d_f1)), "delta_log_loss": float(np.mean(d_ll)),
            "speedup": float(np.mean(speed))}


def on_test(arrays: dict, tol: float) -> dict:
    names = [str(n) for n in arrays["names"]]
    dev = [arrays[f"dev/{n}"] for n in names]
    test = [arrays[f"test/{n}"] for n in names]
    y, yt, sec = arrays["y_dev"], arrays["y_test"], arrays["seconds"]
    f = fit_ensemble(dev, y, EnsembleSettings(prune=tol))
    kept = [i for i, w in enumerate(f.weights) if w > 0]
    p = combine(test, f.weights, f.temperatures)
    return {"macro_f1": macro_f1(yt, p, p.shape[1]), "kept": [names[i] for i in kept],
            "speedup": float(sec.sum() / sec[kept].sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ensemble_pruning")
    ap.add_argument("--table", action="store_true", help="print the saved results only")
    ap.add_argument("--weights", dest="tolerances", type=float, nargs="+", default=list(TOLERANCES))
    ap.add_argument("--name", default="pruning", help="results file OUT/NAME.json (default: %(default)s)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    result_path = args.out / f"{args.name}.json"
    if args.table:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    else:
        data = {name: gather(name, args.out) for name in SETS}
        result = {"cpu": cpu_model(), "splits": SPLITS, "dev": {}, "test": {}}
        for tol in sorted({0.0, *args.tolerances}):
            result["dev"][str(tol)] = {name: held_out(data[name], tol) for name in SETS}
            result["test"][str(tol)] = {name: on_test(data[name], tol) for name in SETS}
            print(f"weight {tol}: done", flush=True)
        result_path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"on {result['cpu']}; dev halves ({result['splits']} splits): pruned minus all members")
    print("| pruning weight | mean delta macro-F1 | worst set | mean delta log-loss | mean speed-up | test: mean delta "
          "macro-F1 | test: worst | test: speed-ups |")
    print("|---|---|---|---|---|---|---|---|")
    base = result["test"]["0.0"]
    for tol, per_set in result["dev"].items():
        f1 = [v["delta_macro_f1"] for v in per_set.values()]
        test = result["test"][tol]
        dt = [test[s]["macro_f1"] - base[s]["macro_f1"] for s in SETS]
        print(f"| {tol} | {np.mean(f1):+.4f} | {min(f1):+.4f} | "
              f"{np.mean([v['delta_log_loss'] for v in per_set.values()]):+.4f} | "
              f"{np.mean([v['speedup'] for v in per_set.values()]):.2f}x | {np.mean(dt):+.4f} | {min(dt):+.4f} | "
              + " ".join(f"{test[s]['speedup']:.1f}" for s in SETS) + " |")
    for tol, test in result["test"].items():
        print(f"weight {tol}: kept " + "; ".join(f"{s}: {'+'.join(test[s]['kept'])}" for s in SETS))


if __name__ == "__main__":
    main()
