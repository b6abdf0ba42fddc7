#!/usr/bin/env python3
"""How close a training step of the default BERT comes to the machine's fp32 matrix-multiply rate.

    python bench/train_flops.py                          # 100k THUCNews headlines, 150 steps per variant
    python bench/train_flops.py --variants dense,default --repeat 3
    python bench/train_flops.py --accuracy bench/results/selection/thucnews/data   # + dense vs sparse test macro-F1

1. **The matmul rate**: ``torch.mm`` in fp32 with the threads training uses, on square matrices
   (1024, 2048) and on the default model's feed-forward shape at this data's batch size; the
   fastest of them is the reference rate.
2. **The model's FLOPs**: every timed batch (the length-grouped batches the trainer makes, same
   seed) counted once by ``torch.utils.flop_counter.FlopCounterMode``, forward and backward.
3. **Each variant** trains ``--steps`` steps with the app's own ``Trainer`` (the defaults of
   ``run.py train``: 4 layers, hidden 256, bigram embeddings for every bigram seen twice in the
   training file, batch 32, AdamW): GFLOP/s = the batches' FLOPs / the training seconds, as a share
   of the matmul rate. ``dense`` is the trainer before row-sparse embedding gradients; ``default``
   is ``run.py train`` now; ``batch64`` doubles the batch with the learning rate x sqrt(2);
   ``bf16`` adds bf16 autocast, ``compile`` ``torch.compile``. Variants run interleaved, ``--repeat`` times, best kept.
4. **The profile**: ``torch.profiler`` over steps of the default variant: the ops by their own time.

``--accuracy DIR ...`` also trains the whole default BERT (``run.py train --no-baselines``, in this
process) on each ``DIR/{train,dev,test}.csv`` (the sets ``bench/selection.py`` writes) with dense and
with row-sparse embedding gradients, and reports test macro-F1 and training seconds of both.
Writes ``bench/results/train_flops.json``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from load_test import cpu_model  # noqa: E402  (bench/: the script's folder is on sys.path)
from task_sets import THUCNEWS  # noqa: E402  (bench/: the script's folder is on sys.path)
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cls_app.io.records import label_list, load_labeled  # noqa: E402
from cls_app.text.batching import pad_batch  # noqa: E402
from cls_app.training.components import build_model, build_tokenizer  # noqa: E402
from cls_app.training.settings import ModelOptions, TrainSettings  # noqa: E402
from cls_app.training.trainer import TrainData, Trainer, epoch_batches  # noqa: E402

VARIANTS = {
    "dense": ("dense embedding gradients (the trainer before this change)", {"sparse_embeddings": False}),
    "default": ("run.py train: row-sparse gradients for the character and bigram tables", {}),
    "batch64": ("default, batch 64, learning rate x sqrt(2)", {"batch_size": 64, "lr_scale": math.sqrt(2)}),
    "bf16": ("default + bf16 autocast (--precision bf16)", {"precision": "bf16"}),
    "compile": ("default + torch.compile (embedding gradients dense under compile)", {"compile": True}),
}


def matmul_rate(shapes: list[tuple[int, int, int]], seconds: float = 2.0) -> list[dict]:
    """fp32 GFLOP/s of ``torch.mm`` for each (m, k, n), each timed for ``seconds`` after a warm-up."""
    out = []
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            torch.mm(a, b)
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            torch.mm(a, b)
            calls += 1
        rate = 2 * m * k * n * calls / (time.perf_counter() - t0) / 1e9
        out.append({"shape": f"{m}x{k}x{n}", "gflop_s": round(rate, 1)})
    return out


def step_flops(model: torch.nn.Module, ids: list[list[int]], y: list[int], batches: list[np.ndarray],
               pad_id: int) -> float:
    """Forward + backward FLOPs of ``batches`` (each counted once), on a copy of the model."""
    twin = copy.deepcopy(model).train()
    total = 0
    for idx in batches:
        x, mask = pad_batch([ids[j] for j in idx], pad_id)
        with FlopCounterMode(display=False) as counter:
            loss = torch.nn.functional.cross_entropy(twin(x, attention_mask=mask), torch.tensor([y[j] for j in idx]))
            loss.backward()
        total += counter.get_total_flops()
        twin.zero_grad(set_to_none=True)
    return float(total)


def settings_for(variant: str, args) -> TrainSettings:
    over = dict(VARIANTS[variant][1])
    scale = over.pop("lr_scale", 1.0)
    base = TrainSettings(epochs=1, patience=0, seed=args.seed, progress=False)
    return dataclasses.replace(base, lr=base.lr * scale, **over)


def run_variant(variant: str, init: dict, make, ids, y, dev, pad_id, args) -> float:
    model = make()
    model.load_state_dict(init)
    settings = settings_for(variant, args)
    data = TrainData(ids, y, dev[0], dev[1], dev[2], pad_id)
    t0 = time.perf_counter()
    Trainer(model, data, settings).run()
    return time.perf_counter() - t0


def profile_default(init: dict, make, ids, y, dev, pad_id, args, rows: int = 14) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    model = make()
    model.load_state_dict(init)
    data = TrainData(ids, y, dev[0], dev[1], dev[2], pad_id)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        Trainer(model, data, settings_for("default", args)).run()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 4), "calls": e.count,
             "self_ms_per_step": round(e.self_cpu_time_total / 1e3 / args.steps, 2)} for e in events[:rows]]


def accuracy(folders: list[Path], threads: int, reuse: bool) -> list[dict]:
    """The whole default BERT on each set, dense vs row-sparse embedding gradients: test macro-F1 and seconds."""
    from cls_app.io.records import DataOptions
    from cls_app.training.settings import BertSettings, TrainJob
    from cls_app.workflow.main_job import run_main_job
    from cls_app.workflow.settings import JobSettings

    rows = []
    for folder in folders:
        data = DataOptions(train=str(folder / "train.csv"), dev=str(folder / "dev.csv"), test=str(folder / "test.csv"),
                           text_col="text", label_col="label")
        row: dict = {"set": folder.parent.name if folder.name == "data" else folder.name}
        for name, sparse in (("dense", False), ("sparse", True)):
            settings = BertSettings(train=TrainSettings(sparse_embeddings=sparse, progress=False), threads=threads,
                                    cache_dir=None)
            out = ROOT / "bench" / "results" / "train_flops_runs" / f"{row['set']}_{name}"
            if reuse and (out / "metrics.json").is_file():  # a finished run of this bench: read it back
                metrics, how = json.loads((out / "metrics.json").read_text(encoding="utf-8")), "reused"
            else:
                job = TrainJob(data=data, bert=settings, out=str(out), overwrite=True)
                metrics, how = run_main_job(JobSettings(run=job)).metrics, "trained"
            test = metrics["test"]
            row[name] = {"test_macro_f1": round(test["macro_f1"], 4), "test_accuracy": test["accuracy"],
                         "train_seconds": metrics["train_seconds"], "best_epoch": metrics["best_epoch"]}
            print(f"  {row['set']:16s} {name:6s} macro-F1 {test['macro_f1']:.4f}  acc {test['accuracy']:.4f}  "
                  f"train {metrics['train_seconds']:.0f} s ({how})", flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=THUCNEWS / "train_100k.txt")
    ap.add_argument("--steps", type=int, default=150, help="training steps per variant (batch 32)")
    ap.add_argument("--variants", default="dense,default,batch64")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--accuracy", type=Path, nargs="*", default=[], metavar="DIR")
    ap.add_argument("--reuse", action="store_true", help="--accuracy: read back runs this bench finished before")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_flops.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown variant(s): {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")

    train = load_labeled(str(args.train))
    labels = label_list(train)
    opts = ModelOptions()
    tok = build_tokenizer(opts, train)
    torch.manual_seed(args.seed)
    model0 = build_model(opts, tok, train, labels)  # bigram table from the whole training file, as run.py train
    init = {k: v.clone() for k, v in model0.state_dict().items()}

    def make() -> torch.nn.Module:
        return copy.deepcopy(model0)

    n_params = sum(p.numel() for p in model0.parameters())
    n_bigram = model0.bigram.table.weight.numel() if model0.bigram is not None else 0
    rng = np.random.default_rng(args.seed)
    sub = rng.permutation(len(train))
    l2i = {c: i for i, c in enumerate(labels)}
    rates: dict[int, dict] = {}
    report: dict = {"cpu": cpu_model(), "threads": args.threads, "torch": torch.__version__,
                    "train": str(args.train), "parameters_m": round(n_params / 1e6, 2),
                    "bigram_parameters_m": round(n_bigram / 1e6, 2), "variants": {}}
    mean_tokens = 0.0
    for variant in wanted:
        batch = settings_for(variant, args).batch_size
        if batch in rates:
            continue
        rows = sub[: args.steps * batch]
        ids = tok.encode_batch([train.texts[i] for i in rows], opts.max_len)
        y = [l2i[train.labels[i]] for i in rows]
        batches = epoch_batches([len(s) for s in ids], batch, args.seed, 0, True)
        flops = step_flops(model0, ids, y, batches, tok.pad_id)
        mean_tokens = float(np.mean([len(s) for s in ids]))
        rates[batch] = {"ids": ids, "y": y, "flops": flops}
    h, f = opts.hidden, opts.intermediate or 4 * opts.hidden
    tokens32 = int(round(32 * mean_tokens / 16) * 16)
    mm = matmul_rate([(1024, 1024, 1024), (2048, 2048, 2048), (tokens32, h, f), (tokens32, f, h)])
    peak = max(r["gflop_s"] for r in mm)
    report.update(matmul=mm, matmul_peak_gflop_s=peak, mean_tokens=round(mean_tokens, 1))
    print(f"CPU {report['cpu']}, {args.threads} threads, torch {torch.__version__}; model {n_params / 1e6:.1f}M "
          f"parameters ({n_bigram / 1e6:.1f}M bigram vectors); {mean_tokens:.1f} tokens per text")
    shapes = ", ".join(f"{r['shape']} {r['gflop_s']:.0f}" for r in mm)
    print(f"fp32 matmul: {shapes} GFLOP/s -> reference {peak:.0f}")

    dev_ids = tok.encode_batch([train.texts[i] for i in sub[-64:]], opts.max_len)
    dev = (dev_ids, [l2i[train.labels[i]] for i in sub[-64:]], labels)
    best: dict[str, float] = {}
    for rnd in range(args.repeat):
        for variant in wanted:
            d = rates[settings_for(variant, args).batch_size]
            try:
                seconds = run_variant(variant, init, make, d["ids"], d["y"], dev, tok.pad_id, args)
            except Exception as exc:  # noqa: BLE001 (a lever that cannot run here, e.g. no C++ compiler)
                print(f"  {variant}: failed ({type(exc).__name__}: {str(exc)[:120]})")
                wanted.remove(variant)
                continue
            print(f"  round {rnd + 1} {variant:8s} {seconds:6.2f} s", flush=True)
            best[variant] = min(seconds, best.get(variant, math.inf))
    print(f"\n{'variant':9s} {'s/step':>7s} {'texts/s':>8s} {'GFLOP/s':>8s} {'of mm':>6s}  what")
    for variant in wanted:
        s = settings_for(variant, args)
        d = rates[s.batch_size]
        steps = -(-len(d["ids"]) // s.batch_size)
        gflops = d["flops"] / best[variant] / 1e9
        row = {"seconds": round(best[variant], 3), "ms_per_step": round(best[variant] / steps * 1e3, 1),
               "texts_per_s": round(len(d["ids"]) / best[variant], 1), "gflop_s": round(gflops, 1),
               "share_of_matmul": round(gflops / peak, 3), "gflop_per_step": round(d["flops"] / steps / 1e9, 2),
               "what": VARIANTS[variant][0]}
        report["variants"][variant] = row
        print(f"{variant:9s} {row['ms_per_step']:7.1f} {row['texts_per_s']:8.1f} {gflops:8.1f} "
              f"{row['share_of_matmul']:6.1%}  {row['what']}")
    if not args.no_profile:
        d = rates[32]
        report["profile"] = profile_default(init, make, d["ids"], d["y"], dev, tok.pad_id, args)
        print("\nprofile of the default variant (self time):")
        for r in report["profile"]:
            print(f"  {r['op']:40s} {r['share']:6.1%} {r['self_ms_per_step']:7.2f} ms/step  {r['calls']} calls")
    if args.accuracy:
        print("\nwhole default BERT, dense vs row-sparse embedding gradients:")
        report["accuracy"] = accuracy(args.accuracy, args.threads, args.reuse)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
