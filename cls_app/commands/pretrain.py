"""``run.py pretrain``: pre-train a BERT (masked LM + optional NSP, or ELECTRA) on unlabeled text."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..training.pretrain_settings import PretrainSettings
from .flags import add_settings, output_lock, settings_from

NAME = "pretrain"
MODEL = ("vocab", "layers", "hidden", "heads", "intermediate", "dropout", "min_freq", "max_vocab", "max_position")
OBJECTIVE = ("max_len", "nsp", "wwm", "mlm_prob", "steps", "batch_size", "log_every", "lr", "weight_decay",
             "warmup_ratio", "seed", "save_every", "snapshot_every", "precision", "objective", "generator_hidden",
             "generator_layers", "disc_weight")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="pre-train a BERT (masked LM + optional NSP, or ELECTRA) on unlabeled text",
                       description="Masked-language-model pre-training (15%% of tokens; 80%% [MASK], 10%% random, "
                       "10%% unchanged), optionally with next-sentence prediction and whole-word masking; or, with "
                       "--objective electra, replaced-token detection against a small generator. "
                       "The output folder is a BERT checkpoint for `train --pretrained`.")
    p.add_argument("--corpus", nargs="+", help="text files or folders: plain text (one document per line, or "
                   "documents separated by blank lines), or labeled files (their text column only); a file given "
                   "twice counts twice")
    p.add_argument("--out", required=True, help="output folder (e.g. saved_models/NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out with its settings")
    p.add_argument("--time-limit", type=float, help="stop (after saving) when this many minutes have passed")
    add_settings(p, PretrainSettings, only=("text_col", "encoding"))
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    add_settings(p.add_argument_group("model"), PretrainSettings, only=MODEL)
    add_settings(p.add_argument_group("objective and training"), PretrainSettings, only=OBJECTIVE)
    return p


def run(args: argparse.Namespace) -> None:
    from ..training.pretrain import load_settings, run_pretraining

    if not args.resume and not args.corpus:
        raise UserError("give --corpus FILE_OR_DIR... (or --resume to continue a run)")
    if args.resume:
        settings = load_settings(Path(args.out))
    else:
        settings = settings_from(args, PretrainSettings, corpus=[str(Path(c).resolve()) for c in args.corpus])
    limit = args.time_limit * 60 if args.time_limit else None
    with output_lock(args.out):
        summary = run_pretraining(settings, args.out, resume=args.resume, time_limit_s=limit, threads=args.threads)
    last = summary["last"]
    print(f"pre-trained {summary['step']}/{summary['steps']} steps in {summary['train_seconds']:.0f}s "
          f"({summary['tokens_per_s']:.0f} tokens/s), mlm_loss {last.get('mlm_loss', 'n/a')}"
          + (f", nsp_acc {last['nsp_acc']}" if "nsp_acc" in last else ""))
    print(f"model saved to {args.out}")
