#!/usr/bin/env python3
"""Training throughput: this project's loop (``cls_app.training.trainer``) vs the ``transformers`` Trainer.

    pip install -r bench/requirements.txt        # accelerate, which the Trainer needs
    python bench/train_speed.py                  # throughput of every lever, 40 steps each
    python bench/train_speed.py --epochs 1       # + dev accuracy after 1 epoch, ours vs Trainer
    python bench/train_speed.py --levers trainer,default --steps 100 --repeat 2

Same model (the default small config, same initial weights), same data (THUCNews headlines:
``dev.txt`` as training data, ``test.txt`` for accuracy), same batch size, max length,
optimizer (AdamW, linear warm-up/decay, clipping) and number of steps for every variant.
The Trainer pads every batch to ``--max-len`` (``DataCollatorWithPadding(padding="max_length")``).

Each lever is one variant of our loop; ``default`` is what ``run.py train`` does.  Throughput
is timed around the whole training call (optimizer set-up included) for every variant alike;
the ratio column is samples/s over the Trainer's.  Variants run interleaved, ``--repeat``
times, and the best run of each is reported, so a burst of load from other work on a shared
machine hurts every variant alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # no per-epoch bars from the Trainer in the tables
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as run.py sets it (cls_app/cli.py main)

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from task_sets import THUCNEWS  # noqa: E402  (the one place of the data folder)

from cls_app.io.records import label_list, load_labeled  # noqa: E402
from cls_app.modeling.bert import BertClassifier, scratch_config  # noqa: E402
from cls_app.runtime.engine import predict_logits  # noqa: E402
from cls_app.text.batching import pad_batch  # noqa: E402
from cls_app.text.token_cache import get_or_build  # noqa: E402
from cls_app.text.tokenizer import CharTokenizer  # noqa: E402
from cls_app.training.settings import TrainSettings  # noqa: E402
from cls_app.training.trainer import TrainData, Trainer, epoch_batches  # noqa: E402

# name -> (what it changes, TrainSettings overrides, model/env overrides)
LEVERS: dict[str, tuple[str, dict, dict]] = {
    "static": ("our loop, pad to max-len, random batches (as the Trainer)",
               {"pad_to": "max_len", "group_by_length": False}, {}),
    "dynamic": ("+ dynamic padding (pad to the longest in the batch)", {"group_by_length": False}, {}),
    "default": ("+ length-grouped batches (run.py train default)", {}, {}),
    "eager": ("default, eager attention instead of SDPA", {}, {"attn": "eager"}),
    "threads1": ("default, torch.set_num_threads(1)", {}, {"threads": 1}),
    "threads2": ("default, torch.set_num_threads(2)", {}, {"threads": 2}),
    "bf16": ("default + bf16 autocast", {"precision": "bf16"}, {}),
    "compile": ("default + torch.compile", {"compile": True}, {}),
}


def load(data: Path, max_vocab: int, max_len: int, cache_dir: Path | None):
    train = load_labeled(str(data / "dev.txt"))
    test = load_labeled(str(data / "test.txt"))
    labels = label_list(train)
    l2i = {name: i for i, name in enumerate(labels)}
    tok = CharTokenizer.build(train.texts, min_freq=2, max_vocab=max_vocab)
    t = time.perf_counter()
    train_ids = tok.encode_batch(train.texts, max_len)
    t_encode = time.perf_counter() - t
    timing = {"encode_s": t_encode}
    if cache_dir is not None:
        t = time.perf_counter()
        get_or_build(train.texts, tok, max_len, cache_dir)  # miss (or hit from an earlier run)
        timing["cache_first_s"] = time.perf_counter() - t
        t = time.perf_counter()
        train_ids = get_or_build(train.texts, tok, max_len, cache_dir)
        timing["cache_hit_s"] = time.perf_counter() - t
    test_ids = tok.encode_batch(test.texts, max_len)
    return (tok, labels, train_ids, [l2i[x] for x in train.labels], test_ids,
            [l2i[x] for x in test.labels], timing)


def make_model(vocab: int, labels: list[str], args, attn: str = "sdpa") -> BertClassifier:
    torch.manual_seed(args.seed)
    cfg = scratch_config(vocab, labels, layers=args.layers, hidden=args.hidden, heads=args.heads)
    model = BertClassifier(cfg)
    model.set_attn_implementation(attn)
    return model


def base_settings(args, epochs: int = 1) -> TrainSettings:
    return TrainSettings(
        epochs=epochs, batch_size=args.batch_size, lr=args.lr, patience=0, seed=args.seed,
        eval_batch_size=128,
    )


def run_ours(init_state, vocab, labels, ids, y, dev_ids, dev_y, pad_id, args, overrides, env, epochs=1):
    """Train with the Trainer; return (seconds, samples, tokens, history)."""
    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    missing = sorted(set(overrides) - fields)
    if missing:
        return None, f"trainer has no {', '.join(missing)}"
    overrides = {k: (args.max_len if v == "max_len" else v) for k, v in overrides.items()}
    settings = dataclasses.replace(base_settings(args, epochs), **overrides)
    model = make_model(vocab, labels, args, env.get("attn", "sdpa"))
    model.load_state_dict(init_state)
    threads = torch.get_num_threads()
    if env.get("threads"):
        torch.set_num_threads(env["threads"])
    try:
        t = time.perf_counter()
        result = Trainer(model, TrainData(ids, y, dev_ids, dev_y, labels, pad_id), settings).run()
        seconds = time.perf_counter() - t
    finally:
        torch.set_num_threads(threads)
    return {"seconds": seconds, "samples": len(ids) * epochs, "history": result.history,
            "tokens_per_s_fit": result.tokens_per_s}, None


class _WithLoss(torch.nn.Module):
    """The classifier as the Trainer wants it: a loss in the output."""

    def __init__(self, model: BertClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, labels=None, token_type_ids=None):
        logits = self.model(input_ids, attention_mask=attention_mask)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def run_trainer(init_state, tok, labels, ids, y, args, steps: int | None, epochs: int = 1):
    """The transformers Trainer on the same model, data and optimizer settings."""
    from transformers import BertTokenizerFast, DataCollatorWithPadding, Trainer, TrainingArguments

    model = make_model(len(tok), labels, args)
    model.load_state_dict(init_state)
    with tempfile.TemporaryDirectory() as tmp:
        tok.save(tmp)
        hf_tok = BertTokenizerFast(vocab_file=str(Path(tmp) / "vocab.txt"), do_lower_case=True)
        collator = DataCollatorWithPadding(hf_tok, padding="max_length", max_length=args.max_len)
        dataset = [{"input_ids": list(map(int, s)), "labels": int(t)} for s, t in zip(ids, y, strict=True)]
        total = steps or epochs * ((len(ids) + args.batch_size - 1) // args.batch_size)
        targs = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
            weight_decay=0.01, warmup_steps=int(0.1 * total), lr_scheduler_type="linear",
            max_grad_norm=1.0, num_train_epochs=epochs, max_steps=steps or -1, seed=args.seed,
            logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none",
            use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, remove_unused_columns=False,
        )
        wrapped = _WithLoss(model)
        trainer = Trainer(model=wrapped, args=targs, train_dataset=dataset, data_collator=collator)
        t = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t
        n_tokens = total * args.batch_size * args.max_len
    return {"seconds": seconds, "samples": total * args.batch_size, "model": model, "tokens": n_tokens}


def batching_share(ids, pad_id, args) -> float:
    """Seconds per step spent building padded batches (what DataLoader workers could hide)."""
    lengths = [len(s) for s in ids]
    batches = epoch_batches(lengths, args.batch_size, args.seed, 0, True)[: args.steps]
    t = time.perf_counter()
    for idx in batches:
        pad_batch([ids[j] for j in idx], pad_id)
    return (time.perf_counter() - t) / max(len(batches), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=THUCNEWS)
    ap.add_argument("--steps", type=int, default=40, help="training steps per throughput run")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--threads", type=int, help="torch threads for every variant (default: torch's)")
    ap.add_argument("--levers", default="trainer," + ",".join(LEVERS),
                    help="comma-separated: trainer and any of " + ", ".join(LEVERS))
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds; the best is kept")
    ap.add_argument("--epochs", type=int, default=0,
                    help="also train this many full epochs with ours (default levers) and the Trainer "
                         "and compare accuracy on test.txt (0: skip)")
    ap.add_argument("--accuracy-levers", default="default",
                    help="comma-separated levers of ours for the --epochs accuracy run (default: default)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_speed.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as cache:
        tok, labels, ids, y, test_ids, test_y, timing = load(args.data, 21128, args.max_len, Path(cache))
    print(f"data: {len(ids):,} train texts, {len(test_ids):,} test texts, {len(labels)} classes, vocab {len(tok):,}; "
          f"mean length {np.mean([len(s) for s in ids]):.1f} tokens (max-len {args.max_len})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(os.sched_getaffinity(0))} usable cores (machine shared with other work: figures are noisy)")
    print(f"tokenize train: {timing['encode_s']:.2f}s; token-id cache: first {timing['cache_first_s']:.2f}s, "
          f"hit {timing['cache_hit_s']:.3f}s")

    model0 = make_model(len(tok), labels, args)
    init_state = {k: v.clone() for k, v in model0.state_dict().items()}
    rng = np.random.default_rng(args.seed)
    n = args.steps * args.batch_size
    sub = rng.permutation(len(ids))[:n]
    sub_ids, sub_y = [ids[i] for i in sub], [y[i] for i in sub]
    tiny_dev, tiny_dev_y = test_ids[:8], test_y[:8]

    wanted = [x.strip() for x in args.levers.split(",") if x.strip()]
    unknown = [x for x in wanted if x != "trainer" and x not in LEVERS]
    if unknown:
        sys.exit(f"unknown lever(s): {', '.join(unknown)}")
    best: dict[str, dict] = {}
    notes: dict[str, str] = {}
    for rnd in range(args.repeat):
        for name in wanted:
            if name in notes:
                continue
            if name == "trainer":
                r = run_trainer(init_state, tok, labels, sub_ids, sub_y, args, steps=args.steps)
                r.pop("model")
            else:
                _, overrides, env = LEVERS[name]
                r, why = run_ours(init_state, len(tok), labels, sub_ids, sub_y, tiny_dev, tiny_dev_y,
                                  tok.pad_id, args, overrides, env)
                if r is None:
                    notes[name] = why
                    continue
                r.pop("history")
            r["samples_per_s"] = r["samples"] / r["seconds"]
            print(f"  round {rnd + 1} {name:9s} {r['samples_per_s']:8.1f} samples/s", flush=True)
            if name not in best or r["samples_per_s"] > best[name]["samples_per_s"]:
                best[name] = r

    real_tokens = sum(len(s) for s in sub_ids)
    base = best.get("trainer", {}).get("samples_per_s")
    print(f"\n{args.steps} steps x batch {args.batch_size}, max-len {args.max_len}, "
          f"{args.layers} layers / hidden {args.hidden}; best of {args.repeat}")
    print(f"{'variant':10s} {'samples/s':>10s} {'tokens/s':>10s} {'vs Trainer':>10s}  what")
    rows = []
    for name in wanted:
        if name in notes:
            print(f"{name:10s} {'-':>10s} {'-':>10s} {'-':>10s}  skipped: {notes[name]}")
            continue
        r = best[name]
        # tokens/s counts real (non-pad) tokens for every variant, so the figures compare
        tps = real_tokens / r["seconds"]
        ratio = r["samples_per_s"] / base if base else float("nan")
        what = "transformers Trainer, padding='max_length'" if name == "trainer" else LEVERS[name][0]
        print(f"{name:10s} {r['samples_per_s']:10.1f} {tps:10.0f} {ratio:9.2f}x  {what}")
        rows.append({"variant": name, "samples_per_s": round(r["samples_per_s"], 2),
                     "real_tokens_per_s": round(tps, 1), "ratio_vs_trainer": round(ratio, 3), "what": what})
    step_s = batching_share(ids, tok.pad_id, args)
    if "default" in best:
        share = step_s / (best["default"]["seconds"] / args.steps)
        print(f"\nbatch assembly (pad_batch) {step_s * 1e3:.2f} ms/step = {share:.1%} of a default step: "
              f"the most DataLoader workers could hide")

    report = {"args": {k: str(v) for k, v in vars(args).items()}, "timing": timing, "throughput": rows,
              "batch_assembly_ms_per_step": round(step_s * 1e3, 3)}
    if args.epochs:
        report["accuracy"] = accuracy_run(init_state, tok, labels, ids, y, test_ids, test_y, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten {args.out}")


def accuracy_run(init_state, tok, labels, ids, y, test_ids, test_y, args) -> dict:
    """``--epochs`` full epochs with ours and the Trainer; test accuracy after the last epoch."""
    from cls_app.tasks import compute_metrics

    print(f"\naccuracy after {args.epochs} epoch(s) on all {len(ids):,} training texts, scored on test.txt:")
    out = {}
    for name in [x.strip() for x in args.accuracy_levers.split(",") if x.strip()]:
        _, overrides, env = LEVERS[name]
        r, why = run_ours(init_state, len(tok), labels, ids, y, test_ids, test_y, tok.pad_id, args,
                          overrides, env, epochs=args.epochs)
        if r is None:
            print(f"  {name}: skipped ({why})")
            continue
        last = r["history"][-1]  # the model after the last epoch (not the best one: as for the Trainer)
        out[name] = {"accuracy": last["dev_accuracy"], "macro_f1": last["dev_macro_f1"],
                     "seconds": round(r["seconds"], 1), "note": "seconds include one test scoring per epoch"}
    t = run_trainer(init_state, tok, labels, ids, y, args, steps=None, epochs=args.epochs)
    logits = predict_logits(t["model"], test_ids, tok.pad_id, 128)
    m = compute_metrics(test_y, logits.argmax(axis=1), labels)
    out["trainer"] = {"accuracy": round(m["accuracy"], 5), "macro_f1": round(m["macro_f1"], 5),
                      "seconds": round(t["seconds"], 1)}
    for k, v in out.items():
        print(f"  {k:9s} accuracy {v['accuracy']:.4f} macro-F1 {v['macro_f1']:.4f}  train {v['seconds']:.0f}s")
    return out


if __name__ == "__main__":
    main()
