"""``run.py ensemble``: combine model folders (any kinds) into an ensemble folder, fitted on dev."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..errors import UserError
from ..models.ensemble import EnsembleSettings
from ..tasks.abstain import AbstainSettings
from ..training.settings import OptimizerSettings
from .flags import add_abstain, add_reading, add_settings, read_options, settings_from

NAME = "ensemble"


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
    add_settings(p, EnsembleSettings)
    add_settings(p, OptimizerSettings, only=("seed",))
    add_reading(p)
    add_abstain(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..evaluation.compare import expand_model_dirs
    from ..models.base import load_folder
    from ..models.ensemble import EnsembleClassifier
    from ..models.options import InferenceOptions

    settings = settings_from(args, EnsembleSettings)
    settings.check()
    dirs = expand_model_dirs(args.models)
    dev = read_options(args).read(args.dev)
    if not len(dev):
        raise UserError(f"{args.dev}: no labeled rows to fit the ensemble on")
    members = [load_folder(d, InferenceOptions()) for d in dirs]
    model = EnsembleClassifier(members=members, seed=args.seed, abstain=settings_from(args, AbstainSettings).check(),
                               **asdict(settings)).fit_members((dev.texts, dev.labels), source=args.dev)
    model.save(args.out)
    print_summary(model.meta, args.out)


def print_summary(meta: dict, out: str) -> None:
    """One line per member (weight, temperature, dev accuracy), then the ensemble's dev figures."""
    dev = meta["dev"]
    print(f"ensemble of {len(meta['members'])} models, combine {meta['combine']}, fitted on {dev['rows']} dev rows"
          + ("" if meta["fit"]["fitted"] else f" (not fitted: {meta['fit']['reason']}; equal weights)"))
    for m, (_, scores) in zip(meta["members"], dev["members"].items(), strict=True):
        print(f"  {m['name']:<24} weight {m['weight']:.3f}  temperature {m['temperature']:.3f}  "
              f"dev accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}")
    pruned = meta.get("pruned")
    if pruned:
        print(f"  dropped {', '.join(pruned['dropped'])}: dev weight below {pruned['below_weight']} of "
              f"{len(pruned['offered'])} offered (they add nothing the others do not say; --prune 0 keeps them)")
    ins = dev["ensemble_in_sample"]
    line = f"ensemble dev accuracy {ins['accuracy']:.4f} macro-F1 {ins['macro_f1']:.4f} (fitted on these rows)"
    cv = dev.get("ensemble_cross_fitted")
    if cv:
        line += f"; cross-fitted ({cv['folds']} folds) accuracy {cv['accuracy']:.4f} macro-F1 {cv['macro_f1']:.4f}"
    print(line)
    print(f"ensemble saved to {out}")
