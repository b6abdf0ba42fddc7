"""``run.py pretrain``: pre-train a BERT (masked LM + optional NSP, or ELECTRA) on unlabeled text."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..training.pretrain_settings import OBJECTIVES, PretrainSettings
from ..training.settings import default
from .options import add_model_size_options, add_seed

NAME = "pretrain"
# flags whose values go straight into PretrainSettings fields of the same name
_SETTINGS = ("text_col", "encoding", "vocab", "min_freq", "max_vocab", "layers", "hidden", "heads", "intermediate",
             "max_position", "dropout", "max_len", "nsp", "wwm", "mlm_prob", "steps", "batch_size", "lr",
             "weight_decay", "warmup_ratio", "seed", "log_every", "save_every", "snapshot_every", "precision",
             "objective", "generator_hidden", "generator_layers", "disc_weight")


def _d(name: str):
    return default(PretrainSettings, name)


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
    p.add_argument("--text-col", help="text column of CSV/TSV/JSONL corpus files")
    p.add_argument("--encoding", help="corpus encoding (default: detect)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    g = p.add_argument_group("model")
    g.add_argument("--vocab", help="use this vocab.txt instead of building one from the corpus")
    add_model_size_options(g)
    g.add_argument("--max-position", type=int, default=_d("max_position"),
                   help="position embeddings (max fine-tune length; default: %(default)s)")
    _add_objective_options(p)
    return p


def _add_objective_options(p: argparse.ArgumentParser) -> None:
    t = p.add_argument_group("objective and training")
    t.add_argument("--max-len", type=int, default=_d("max_len"), help="tokens per packed sequence incl. [CLS]/[SEP]")
    t.add_argument("--nsp", action="store_true", help="add next-sentence prediction (sentence pairs)")
    t.add_argument("--wwm", action="store_true", help="whole-word masking (words from jieba)")
    t.add_argument("--mlm-prob", type=float, default=_d("mlm_prob"), help="share of tokens chosen for prediction")
    for flag, name in (("--steps", "steps"), ("--batch-size", "batch_size"), ("--log-every", "log_every")):
        t.add_argument(flag, type=int, default=_d(name), help="(default: %(default)s)")
    for flag, name in (("--lr", "lr"), ("--weight-decay", "weight_decay"), ("--warmup-ratio", "warmup_ratio")):
        t.add_argument(flag, type=float, default=_d(name), help="(default: %(default)s)")
    add_seed(t)
    t.add_argument("--save-every", type=int, default=_d("save_every"),
                   help="save model and resumable state every N steps")
    t.add_argument("--snapshot-every", type=int, default=_d("snapshot_every"),
                   help="also keep a model copy in OUT/snapshots/step-N every N steps (0: off)")
    t.add_argument("--precision", choices=["fp32", "bf16"], default=_d("precision"),
                   help="bf16 autocast: faster on CPUs with AVX512-BF16/AMX (measure it first)")
    t.add_argument("--objective", choices=OBJECTIVES, default=_d("objective"),
                   help="mlm: BERT masked LM; electra: a small generator fills the masks and the BERT learns to "
                   "spot replaced tokens at every position (better per FLOP in the ELECTRA paper; not within "
                   "minutes on a CPU, see docs/pretraining.md)")
    t.add_argument("--generator-hidden", type=int, help="electra: generator width (default hidden / 4)")
    t.add_argument("--generator-layers", type=int, help="electra: generator layers (default --layers)")
    t.add_argument("--disc-weight", type=float, default=_d("disc_weight"),
                   help="electra: weight of the discriminator loss")


def run(args: argparse.Namespace) -> None:
    from ..training.pretrain import load_settings, run_pretraining

    if not args.resume and not args.corpus:
        raise UserError("give --corpus FILE_OR_DIR... (or --resume to continue a run)")
    if args.resume:
        settings = load_settings(Path(args.out))
    else:
        settings = PretrainSettings(corpus=[str(Path(c).resolve()) for c in args.corpus],
                                    **{name: getattr(args, name) for name in _SETTINGS})
    limit = args.time_limit * 60 if args.time_limit else None
    summary = run_pretraining(settings, args.out, resume=args.resume, time_limit_s=limit, threads=args.threads)
    last = summary["last"]
    print(f"pre-trained {summary['step']}/{summary['steps']} steps in {summary['train_seconds']:.0f}s "
          f"({summary['tokens_per_s']:.0f} tokens/s), mlm_loss {last.get('mlm_loss', 'n/a')}"
          + (f", nsp_acc {last['nsp_acc']}" if "nsp_acc" in last else ""))
    print(f"model saved to {args.out}")
