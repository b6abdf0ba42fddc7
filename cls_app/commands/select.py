"""``run.py select``: choose which unlabeled texts to label next, for a file or an annotation tool."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..workflow.labeling import SelectSettings
from .flags import add_model, add_reading, add_settings, output_lock, read_options, settings_from

NAME = "select"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, help="choose the unlabeled texts most worth labeling next (uncertainty, diversity)",
        description="Score a pool of unlabeled texts with a model and write the --budget texts most worth "
        "labeling (exact and near duplicates collapsed, texts of --labeled left out), each with its score and the "
        "model's suggested label: as a table, as Label Studio tasks with pre-annotations (and the label config), "
        "or as doccano JSONL. See docs/labeling.md.")
    add_model(p)
    p.add_argument("--pool", required=True, nargs="+", metavar="FILE", help="files of unlabeled texts")
    p.add_argument("--labeled", nargs="+", default=[], metavar="FILE",
                   help="files of texts already labeled (left out of the choice)")
    p.add_argument("--out", required=True, help="the file to write (.csv/.tsv/.jsonl; .json for label-studio)")
    add_settings(p, SelectSettings)
    add_reading(p, labels=False)
    return p


def run(args: argparse.Namespace) -> None:
    from ..inference.files import read_chunks
    from ..models.base import load
    from ..workflow.distill import read_unlabeled
    from ..workflow.labeling import choose, write_selection

    settings = settings_from(args, SelectSettings).check()
    model = load(args.model, follow=args.follow, prefer=args.prefer)
    options = read_options(args)
    pool = read_unlabeled(args.pool, lambda path: read_chunks(path, options))
    labeled = read_unlabeled(args.labeled, lambda path: read_chunks(path, options))
    out = Path(args.out)
    with output_lock(str(out), "--out"):
        chosen = choose(model, pool, labeled, settings)
        written = write_selection(chosen, out, settings.to, model)
    spread = ", ".join(f"{k} {v}" for k, v in sorted(chosen.classes.items(), key=lambda kv: -kv[1]))
    print(f"chose {len(chosen.picks)} of {chosen.pool} pool texts by {chosen.strategy} ({chosen.duplicates} "
          f"duplicates collapsed, {chosen.already_labeled} already labeled); suggested labels: {spread}")
    print(f"written to {', '.join(str(p) for p in written)}")
