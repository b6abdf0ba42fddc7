"""``run.py import-labels``: a labeled CSV from a Label Studio or doccano export."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.records import ReadOptions
from .flags import add_settings, output_lock

NAME = "import-labels"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, help="turn a Label Studio or doccano export into a labeled file train reads",
        description="Read a Label Studio JSON export or a doccano JSONL export and write text,label rows. "
        "Skipped and cancelled tasks are left out and counted; tasks whose annotators disagree are left out and "
        "written to OUT.conflicts.csv for a decision (never resolved silently). See docs/labeling.md.")
    p.add_argument("export", help="the export file")
    p.add_argument("--from", dest="source", required=True, choices=("label-studio", "doccano"),
                   help="which tool wrote it")
    p.add_argument("--out", required=True, help="labeled CSV to write (text,label)")
    add_settings(p, ReadOptions, only=("label_sep",), helps={"label_sep": "joins several labels of one text "
                                                              "(default: %(default)s)"})
    return p


def run(args: argparse.Namespace) -> None:
    import pandas as pd

    from ..errors import UserError
    from ..fileio import atomic_open
    from ..workflow.labeling import import_labels

    out = Path(args.out)
    got = import_labels(Path(args.export), args.source, args.label_sep)
    if not got.rows and not got.conflicts:
        raise UserError(f"{args.export}: no annotated task in this export ({got.skipped} skipped or cancelled)")
    with output_lock(str(out), "--out"):
        with atomic_open(out, "w", newline="") as fh:
            pd.DataFrame(got.rows, columns=["text", "label"]).to_csv(fh, index=False)
        conflicts = out.with_name(out.stem + ".conflicts.csv")
        if got.conflicts:
            with atomic_open(conflicts, "w", newline="") as fh:
                pd.DataFrame([{"item": c["item"], "text": c["text"], "answers": " | ".join(c["answers"])}
                              for c in got.conflicts]).to_csv(fh, index=False)
    print(f"wrote {len(got.rows)} labeled rows to {out}; {got.skipped} skipped or cancelled tasks left out"
          + (f"; {len(got.conflicts)} tasks whose annotators disagree written to {conflicts}" if got.conflicts else ""))
