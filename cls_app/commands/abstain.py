"""``run.py abstain``: fit (or refit) a model folder's abstention on labeled data, for folders made before
abstention existed or to fit it on other data."""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..tasks.abstain import AbstainSettings
from .flags import add_abstain, add_model, add_reading, output_lock, read_options, settings_from

NAME = "abstain"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, help="fit a model folder's abstention (out-of-domain detector and thresholds) on labeled data",
        description="Fit the out-of-domain detector on --train (default: --dev) and the abstention thresholds on "
        "--dev, and write ood.safetensors / ood.json into the model folder (replacing any there). `train` does "
        "this by itself; use it for folders made before abstention existed. An ensemble reads its members' "
        "ood scores: fit each member first. See docs/abstain.md.")
    add_model(p)
    p.add_argument("--dev", required=True, help="labeled file the thresholds are fitted on (not the test file)")
    p.add_argument("--train", help="labeled file the detector is fitted on (the model's training file; default: "
                   "--dev)")
    add_reading(p, task="model")
    add_abstain(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..models.base import load
    from ..models.folders import follow_best

    settings = settings_from(args, AbstainSettings).check()
    folder = follow_best(args.model) if args.follow else args.model
    model = load(folder, follow=False)
    task = model.task.with_separators(args.label_sep, args.path_sep)
    options = read_options(args, text_pair_col=args.text_pair_col or model.text_pair_col, label_sep=",",
                           path_sep="##")
    dev = task.read(args.dev, options)
    train = task.read(args.train, options) if args.train else dev
    if not len(dev):
        raise UserError(f"{args.dev}: no labeled rows to fit the abstention on")
    model.task.encode(dev, model.labels, "are not known to the model; remove those rows")
    with output_lock(str(model.path)):
        model.fit_abstention(train, dev, settings)
        model.save_extras(model.path)  # type: ignore[arg-type]
    rule = model.abstainer.rule  # type: ignore[union-attr]
    method = model.abstainer.scorer.describe()["method"] or "none"  # type: ignore[union-attr]
    print(f"{model.path}: ood score {method}; on {args.dev}: answers {rule.dev['coverage']:.1%} of rows "
          f"(accuracy {rule.dev['accuracy_answered']:.4f}), {rule.dev['out_of_domain']:.1%} out of domain, "
          f"{rule.dev['low_confidence']:.1%} low confidence")
