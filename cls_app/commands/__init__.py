"""Command-line interface: ``python run.py COMMAND ...``, one module per command.

Each command module has ``NAME``, ``add_parser(subparsers)`` and ``run(args)``. This is the
only code that prints; user mistakes become one ``error: ...`` line and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import UserError
from ..fileio import write_error
from ..interrupts import Interrupted, handle_signals

__all__ = ["COMMANDS", "build_parser", "main", "one_line", "setup_logging"]

# the command modules, in the order `run.py --help` lists them
COMMANDS = ("train", "evaluate", "predict", "prepare_data", "pretrain", "prepare_corpus", "baseline", "compare",
            "ensemble", "serve", "export", "explain", "audit", "abstain", "distill", "select", "import_labels")


def build_parser(prog: str = "run.py") -> argparse.ArgumentParser:
    """The argument parser with every sub-command (``prog``: ``run.py``, or ``cls-app`` as installed)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Chinese text classification with BERT, offline-capable."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        p = module.add_parser(sub)
        p.set_defaults(command_run=module.run, command_parser=p)
    return parser


def setup_logging(quiet: bool = False) -> None:
    """Log lines with time and level to stderr; silence library chatter."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not sys.stderr.isatty():
        # progress bars going to a log file: a line every 30 s, not ten a second
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    # transformers reads these when it is imported (importing it here would cost every command a second)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("jieba").setLevel(logging.WARNING)


# characters that end a line for str.splitlines() (and for terminals, editors, log readers)
_LINE_BREAKS = {c: repr(chr(c))[1:-1] for c in (*range(0x0A, 0x0E), 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}


def one_line(message: str) -> str:
    """``message`` as one line: line breaks inside it (user values quoted in it may hold any) escaped."""
    return message.strip().translate(_LINE_BREAKS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    # Idle OpenMP threads sleep instead of spinning: on a busy machine spinning threads made
    # training many times slower (docs/speed.md). Must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser("cls-app" if os.path.basename(sys.argv[0]) == "cls-app" else "run.py")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    setup_logging(args.quiet)
    try:
        with handle_signals():  # Ctrl-C / SIGTERM: Interrupted, so every cleanup runs on the way out
            args.command_run(args)
    except UserError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(exc.message(), file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a failed write no atomic writer saw (e.g. creating a folder)
        err = write_error(exc, exc.filename or "a file")
        if err is None:
            raise
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return 2
    return 0
