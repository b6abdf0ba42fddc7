"""``run.py ensemble``: combine model folders (BERT and/or baselines) into an ensemble folder, fitted on dev."""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..inference.ensemble import COMBINES, EnsembleSettings
from .options import add_reading_options, add_seed

NAME = "ensemble"
_D = EnsembleSettings()


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, help="combine model folders into one ensemble model, weights fitted on dev",
        description="Combine model folders (BERT and/or baselines trained on the same classes) into an "
        "ensemble folder: per-member temperature and weights fitted on the --dev file only (never on test), "
        "weights shrunk toward equal on small dev sets. The folder works wherever a model folder does "
        "(evaluate, predict, compare). Details: docs/ensembles.md.")
    p.add_argument("--models", nargs="+", required=True, metavar="DIR",
                   help="member model folders; a folder of model folders (e.g. OUT/baselines) expands")
    p.add_argument("--dev", required=True, help="labeled dev file the weights are fitted on (not the test file)")
    p.add_argument("--out", required=True, help="ensemble folder to write")
    p.add_argument("--combine", choices=COMBINES, default=_D.combine,
                   help="logprob: weighted log-probabilities (geometric mean); prob: weighted probabilities "
                   "(default: %(default)s)")
    p.add_argument("--no-fit", dest="fit", action="store_false",
                   help="equal weights and temperature 1: nothing fitted on dev")
    p.add_argument("--copy", action="store_true",
                   help="copy the members' model files into OUT/members/ (default: reference them by relative path)")
    p.add_argument("--min-fit-rows", type=int, default=_D.min_fit_rows,
                   help="below this many dev rows nothing is fitted (default: %(default)s)")
    p.add_argument("--shrink-rows", type=int, default=_D.shrink_rows,
                   help="fitted weights shrink toward equal by n / (n + this) for n dev rows (default: %(default)s)")
    p.add_argument("--cv-folds", type=int, default=_D.cv_folds,
                   help="folds of the cross-fitted dev score (default: %(default)s)")
    add_seed(p)
    add_reading_options(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..evaluation.compare import expand_model_dirs
    from ..inference.ensemble import build_ensemble
    from ..inference.predictor import load_predictor, model_files
    from ..io.records import load_labeled

    settings = EnsembleSettings(combine=args.combine, fit=args.fit, min_fit_rows=args.min_fit_rows,
                                shrink_rows=args.shrink_rows, cv_folds=args.cv_folds, copy=args.copy, seed=args.seed)
    settings.check()
    dirs = expand_model_dirs(args.models)
    dev = load_labeled(args.dev, text_col=args.text_col, label_col=args.label_col, encoding=args.encoding,
                       fmt=args.fmt, on_bad_row=args.on_bad_row)
    if not len(dev):
        raise UserError(f"{args.dev}: no labeled rows to fit the ensemble on")
    members = [load_predictor(d) for d in dirs]
    meta = build_ensemble(members, dev.texts, dev.labels, args.out, settings, files_of=model_files,
                          dev_source=args.dev)
    print_summary(meta, args.out)


def print_summary(meta: dict, out) -> None:
    """One line per member (weight, temperature, dev accuracy), then the ensemble's dev figures."""
    dev = meta["dev"]
    print(f"ensemble of {len(meta['members'])} models, combine {meta['combine']}, fitted on {dev['rows']} dev rows"
          + ("" if meta["fit"]["fitted"] else f" (not fitted: {meta['fit']['reason']}; equal weights)"))
    for m, (_, scores) in zip(meta["members"], dev["members"].items(), strict=True):
        print(f"  {m['name']:<24} weight {m['weight']:.3f}  temperature {m['temperature']:.3f}  "
              f"dev accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}")
    ins = dev["ensemble_in_sample"]
    line = f"ensemble dev accuracy {ins['accuracy']:.4f} macro-F1 {ins['macro_f1']:.4f} (fitted on these rows)"
    cv = dev.get("ensemble_cross_fitted")
    if cv:
        line += f"; cross-fitted ({cv['folds']} folds) accuracy {cv['accuracy']:.4f} macro-F1 {cv['macro_f1']:.4f}"
    print(line)
    print(f"ensemble saved to {out}")
