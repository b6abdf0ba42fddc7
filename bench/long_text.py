#!/usr/bin/env python3
"""What each long-text option does to accuracy and speed, on synthetic long THUCNews documents.

A document is 30-50 headlines of one class joined by "。" (about 600-1000 characters, far more
than --max-len tokens). Training documents are built from ``dev.txt`` headlines, test documents
from ``test.txt`` headlines, so no headline is shared between train and test. With
``--purity P`` only a share P of a document's headlines come from its class (the rest from
random other classes), which makes single windows noisy.

For each option a small BERT is trained from scratch (same seed, same budget) and scored on
the test documents; prediction speed is measured on the test documents. ``chunks`` models
are trained once (every window an example, labelled with its document's class) and
evaluated with mean and with max pooling.

    python bench/long_text.py                       # writes bench/results/long_text.json
    python bench/long_text.py --purity 0.5 --out bench/results/long_text_p05.json   # noisier documents
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from cls_app.fileio import write_json  # noqa: E402
from cls_app.io.records import DataOptions, load_labeled  # noqa: E402
from cls_app.modeling.folder import load_model_dir  # noqa: E402
from cls_app.runtime.engine import predict_text_logits  # noqa: E402
from cls_app.tasks import compute_metrics  # noqa: E402
from cls_app.text.long_text import LongTextOptions  # noqa: E402
from cls_app.training.settings import BertSettings, ModelOptions, TrainJob, TrainSettings  # noqa: E402
from cls_app.workflow.main_job import run_main_job  # noqa: E402
from cls_app.workflow.settings import JobSettings  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "thucnews"

VARIANTS = [  # (name, training options, prediction pooling override)
    ("head", LongTextOptions(truncation="head"), None),
    ("tail", LongTextOptions(truncation="tail"), None),
    ("head+tail", LongTextOptions(truncation="head+tail"), None),
    ("chunks-mean", LongTextOptions(long_text="chunks", chunk_pool="mean"), None),
    ("chunks-max", None, "max"),  # the chunks model, pooled by max at prediction
]


def build_documents(path: Path, n_docs: int, purity: float, seed: int) -> tuple[list[str], list[str]]:
    """Documents of 30-50 headlines, ``purity`` of them from the document's class."""
    data = load_labeled(path)
    by_class: dict[str, list[str]] = {}
    for text, label in zip(data.texts, data.labels, strict=True):
        by_class.setdefault(label, []).append(text)
    classes = sorted(by_class)
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n_docs):
        label = classes[i % len(classes)]
        k = rng.randint(30, 50)
        own = round(k * purity)
        parts = rng.sample(by_class[label], own)
        others = [c for c in classes if c != label]
        parts += [rng.choice(by_class[rng.choice(others)]) for _ in range(k - own)]
        rng.shuffle(parts)
        texts.append("。".join(parts) + "。")
        labels.append(label)
    return texts, labels


def write_tsv(path: Path, texts: list[str], labels: list[str]) -> Path:
    import pandas as pd

    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, sep="\t", index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="THUCNews folder with dev.txt, test.txt")
    ap.add_argument("--train-docs", type=int, default=1000)
    ap.add_argument("--test-docs", type=int, default=300)
    ap.add_argument("--purity", type=float, default=1.0, help="share of a document's headlines from its class")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "long_text.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    train_texts, train_labels = build_documents(args.data / "dev.txt", args.train_docs, args.purity, args.seed)
    test_texts, test_labels = build_documents(args.data / "test.txt", args.test_docs, args.purity, args.seed + 1)
    chars = [len(t) for t in train_texts + test_texts]
    print(f"documents: {len(train_texts)} train, {len(test_texts)} test; "
          f"{min(chars)}-{max(chars)} characters (mean {sum(chars) / len(chars):.0f}); purity {args.purity}")

    work = Path(tempfile.mkdtemp(prefix="long_text_bench_"))
    train_file = write_tsv(work / "train.tsv", train_texts, train_labels)
    results = []
    trained: dict[str, tuple[Path, dict]] = {}
    for name, options, pool in VARIANTS:
        if args.only and name not in args.only:
            continue
        if options is not None:
            out = work / name
            bert = BertSettings(
                model=ModelOptions(layers=args.layers, hidden=args.hidden, heads=args.heads, max_len=args.max_len),
                train=TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                    patience=0),
                long_text=options, threads=args.threads,
            )
            job = TrainJob(data=DataOptions(train=str(train_file), text_col="text", label_col="label", fmt="tsv"),
                           bert=bert, out=str(out))
            t0 = time.perf_counter()
            metrics = run_main_job(JobSettings(run=job)).metrics
            trained[name] = (out, {**metrics, "wall_s": time.perf_counter() - t0})
            model_name = name
        else:
            model_name = "chunks-mean"
            if model_name not in trained:
                continue
        out, train_metrics = trained[model_name]
        loaded = load_model_dir(out)
        opts = loaded.long_text
        if pool is not None:
            opts = LongTextOptions(**{**opts.to_settings(), "chunk_pool": pool})
        t0 = time.perf_counter()
        logits = predict_text_logits(loaded.model, loaded.tokenizer, test_texts, loaded.max_len, opts, 64)
        predict_s = time.perf_counter() - t0
        label2id = {n: i for i, n in enumerate(loaded.labels)}
        m = compute_metrics([label2id[x] for x in test_labels], logits.argmax(axis=1), loaded.labels)
        row = {
            "option": name, "steps": train_metrics["steps"],
            "test_accuracy": round(m["accuracy"], 4), "test_macro_f1": round(m["macro_f1"], 4),
            "train_examples_per_epoch": round(train_metrics["train_samples_per_s"] * train_metrics["train_seconds"]
                                              / args.epochs),
            "train_s": round(train_metrics["train_seconds"], 1),
            "predict_texts_per_s": round(len(test_texts) / predict_s, 1),
        }
        results.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)

    report = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": f"{platform.processor() or platform.machine()}, torch threads {args.threads} "
        "(CPU shared with other jobs)",
        "results": results,
    }
    write_json(args.out, report)
    print("\n| option | test accuracy | test macro-F1 | training examples / epoch | steps | train time "
          "| predict texts/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['option']} | {r['test_accuracy']:.4f} | {r['test_macro_f1']:.4f} | "
              f"{r['train_examples_per_epoch']} | {r['steps']} | {r['train_s']:.0f} s | "
              f"{r['predict_texts_per_s']:.0f} |")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
