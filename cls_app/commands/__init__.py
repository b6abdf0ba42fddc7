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

from ..errors import StepFailed, UserError
from ..fileio import write_error
from ..interrupts import Interrupted, handle_signals

__all__ = ["COMMANDS", "build_parser", "main", "one_line", "setup_logging"]

# the command modules, in the order `run.py --help` lists them
COMMANDS = ("train", "evaluate", "predict", "prepare_data", "pretrain", "prepare_corpus", "baseline", "compare",
            "ensemble", "serve", "export", "explain", "audit", "abstain", "distill", "select", "import_labels",
            "drift")


def build_parser(prog: str = "run.py") -> argparse.ArgumentParser:
    """The argument parser with every sub-command (``prog``: ``run.py``, or ``cls-app`` as installed)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Chinese text classification with BERT, offline-capable."
    )
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="only warnings, errors and the final summary")
    loud.add_argument("-v", "--verbose", action="store_true", help="every log line (the libraries' too) and the "
                      "full reports (test report, comparison, the recommendation's tests)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        p = module.add_parser(sub)
        p.set_defaults(command_run=module.run, command_parser=p)
    return parser


PROGRESS_LOGGER = "cls_app.progress"
"""The logger of the main steps (one line each: what is being fitted, what it scored); shown unless ``-q``."""


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Log lines to stderr: by default warnings and the main steps (:data:`PROGRESS_LOGGER`); ``verbose``: every
    INFO line, the libraries' too; ``quiet``: warnings and errors only (progress bars: :mod:`cls_app.bars`)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger(PROGRESS_LOGGER).setLevel(logging.WARNING if quiet else logging.INFO)
    if not verbose:
        for noisy in ("fontTools", "jieba", "httpx", "httpcore", "uvicorn.access", "matplotlib"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers reads these when it is imported (importing it here would cost every command a second)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


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
    setup_logging(args.quiet, args.verbose)
    try:
        with handle_signals():  # Ctrl-C / SIGTERM: Interrupted, so every cleanup runs on the way out
            status = args.command_run(args)  # None: 0; a command may answer 1 (drift found, a step failed)
    except UserError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except StepFailed as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 1
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
    return status if isinstance(status, int) else 0
