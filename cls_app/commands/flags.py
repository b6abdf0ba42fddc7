"""Command-line flags generated from the settings dataclasses (as transformers' ``HfArgumentParser`` does).

Each settings field declared with :func:`cls_app.settings.setting` carries its help text, flag
name, choices and default; :func:`add_settings` turns a dataclass (or some of its fields) into
flags, :func:`settings_from` turns parsed flags back into the dataclass. Groups several commands
share are declared once here: the model folder (:func:`add_model`), reading a file
(:func:`add_reading`), running a model (:func:`add_inference`).
"""

from __future__ import annotations

import argparse
import functools
import types
import typing
from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from ..io.records import DataOptions, ReadOptions
from ..models.options import InferenceOptions
from ..settings import field_default
from ..tasks.abstain import AbstainSettings

T = TypeVar("T")

Target = argparse.ArgumentParser | argparse._ArgumentGroup

MODEL_HELP = ("model folder written by train, baseline or ensemble; a train folder holding best.json "
              "(train --with-baselines) means the model it recommends")
AS_TRAINED = " (default: as the model was trained)"


def _scalar(tp: Any) -> Any:
    """``int | None`` -> int; other annotations as they are."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, once per class (every command's parser reads the same classes)."""
    return typing.get_type_hints(cls)


def add_settings(target: Target, cls: type, *, only: Iterable[str] | None = None, skip: Iterable[str] = (),
                 defaults: dict[str, Any] | None = None, helps: dict[str, str] | None = None) -> None:
    """Flags for the fields of dataclass ``cls`` (``only`` those, in that order; not ``skip``).

    ``defaults`` / ``helps`` override a field's default / help for this command.
    """
    hints = type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}
    names = list(only) if only is not None else [f.name for f in fields(cls)]
    defaults, helps = defaults or {}, helps or {}
    for name in names:
        f = by_name[name]
        meta = f.metadata
        if name in skip or not meta.get("cli", True):
            continue
        default = defaults[name] if name in defaults else field_default(f)
        kw: dict[str, Any] = {"dest": name, "help": helps.get(name, meta.get("help", "")),
                              "default": None if default is MISSING else default}
        flag = meta.get("flag") or "--" + name.replace("_", "-")
        tp = _scalar(hints[name])
        if tp is bool:
            if meta.get("toggle"):
                kw["action"] = argparse.BooleanOptionalAction
            elif default is True:
                flag = meta.get("flag") or "--no-" + name.replace("_", "-")
                kw["action"] = "store_false"
            else:
                kw["action"] = "store_true"
        else:
            if typing.get_origin(tp) is tuple:  # a list of values: tuple[str, ...]
                kw["nargs"] = "+"
                tp = typing.get_args(tp)[0]
                kw["default"] = None if not kw["default"] else list(kw["default"])
            kw["type"] = tp
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
            if meta.get("metavar"):
                kw["metavar"] = meta["metavar"]
        target.add_argument(flag, **kw)


def settings_from(args: argparse.Namespace, cls: type[T], **values: Any) -> T:
    """An instance of dataclass ``cls`` from the parsed flags named after its fields (``values`` win)."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if f.init and hasattr(args, f.name)}  # type: ignore[arg-type]
    return cls(**{**given, **values})


# --------------------------------------------------------------------------- shared groups

READ_FIELDS = ("text_col", "text_pair_col", "label_col", "encoding", "fmt", "on_bad_row")
TASK_FIELDS = ("task", "label_sep", "path_sep")
UNLABELED_FIELDS = ("text_col", "text_pair_col", "encoding", "fmt")


def add_model(p: argparse.ArgumentParser, required: bool = True, follow: bool = True) -> None:
    """--model, and --no-follow to use a train folder's own BERT instead of its best.json recommendation."""
    p.add_argument("--model", required=required, help=MODEL_HELP)
    if follow:
        from ..models.folders import PREFER

        p.add_argument("--prefer", choices=PREFER, default=PREFER[0],
                       help="a train folder holding best.json: its recommended model (quality, the default) or the "
                       "fast model it names beside it (fast: the most texts/s within 0.5 points on dev)")
        p.add_argument("--no-follow", dest="follow", action="store_false",
                       help="use the BERT in --model itself, not the model its best.json recommends")


def add_reading(p: argparse.ArgumentParser, labels: bool = True, task: str = "none") -> None:
    """The reading flags (:class:`ReadOptions`); ``labels``: a labeled file. ``task``: ``none``, ``train``
    (--task, --label-sep, --path-sep) or ``model`` (the separators, defaulting to the model's)."""
    fields_ = READ_FIELDS if labels else UNLABELED_FIELDS
    helps = {} if labels else {"text_pair_col": ReadOptions.__dataclass_fields__["text_pair_col"].metadata["help"]
                               + "; default: as the model was trained"}
    add_settings(p, ReadOptions, only=fields_, helps=helps)
    if task == "none":
        return
    g = p.add_argument_group("label sets (docs/tasks.md)")
    if task == "train":
        add_settings(g, ReadOptions, only=TASK_FIELDS)
        return
    as_trained = {name: ReadOptions.__dataclass_fields__[name].metadata["help"].replace(" (default: %(default)s)", "")
                  + AS_TRAINED for name in TASK_FIELDS[1:]}
    add_settings(g, ReadOptions, only=TASK_FIELDS[1:], defaults=dict.fromkeys(TASK_FIELDS[1:]), helps=as_trained)


def add_unlabeled(p: Target, help_text: str) -> None:
    """``--unlabeled FILE...``: unlabeled texts (train, baseline, distill)."""
    p.add_argument("--unlabeled", nargs="+", default=[], metavar="FILE", help=help_text)


def add_kind_settings(p: Target, help_text: str) -> None:
    """``--set KIND.NAME=VALUE`` (repeatable): a setting of one kind (train, baseline)."""
    p.add_argument("--set", dest="kind_settings", action="append", default=[], metavar="KIND.NAME=VALUE",
                   help=help_text)


def add_text_io(p: Target, input_help: str, output_help: str, texts: Target | None = None) -> None:
    """``--input FILE``, ``--text TEXT`` (repeatable; in ``texts``, a mutually exclusive group, when given) and
    ``--output FILE`` (predict, explain)."""
    src = texts if texts is not None else p
    src.add_argument("--input", help=input_help)
    src.add_argument("--text", action="append", help="a text (repeatable); predict without --input or --text reads "
                     "standard input, one text per line")
    p.add_argument("--output", help=output_help)


def add_split(p: argparse.ArgumentParser, train_help: str | None = None) -> None:
    """--train/--dev/--test/--dev-fraction, the reading flags and --task: the split train and baseline share."""
    add_settings(p, DataOptions, only=("train", "dev", "test", "dev_fraction"),
                 defaults={"train": None}, helps={"train": train_help} if train_help else None)
    add_reading(p, task="train")


def add_inference(p: Target, only: Iterable[str] = ("threads", "batch_size", "quantize", "backend"),
                  batch_size: int | None = None) -> None:
    """The inference flags (:class:`InferenceOptions`) a command takes."""
    defaults = {"batch_size": batch_size} if batch_size is not None else None
    add_settings(p, InferenceOptions, only=only, defaults=defaults)


def add_abstain(p: argparse.ArgumentParser) -> None:
    """--reject, --target-coverage, --target-precision: another abstention rule than the model folder's."""
    add_settings(p.add_argument_group("abstaining (docs/abstain.md)"), AbstainSettings)


def inference_options(args: argparse.Namespace, **values: Any) -> InferenceOptions:
    """The :class:`InferenceOptions` of the parsed flags (those the command has; the abstention flags too)."""
    if hasattr(args, "target_coverage") and "abstain" not in values:
        values["abstain"] = settings_from(args, AbstainSettings)
    return settings_from(args, InferenceOptions, **values).check()


def read_options(args: argparse.Namespace, **values: Any) -> ReadOptions:
    """The :class:`ReadOptions` of the parsed flags (defaults for those the command lacks)."""
    return settings_from(args, ReadOptions, **values)


def output_lock(path: str | None, flag: str = "--out") -> Any:
    """The one-run-per-output lock on ``path`` (see :mod:`cls_app.locks`), as a context manager;
    under torchrun only rank 0 writes, so only rank 0 locks."""
    from ..locks import run_lock
    from ..runtime.distributed import env_info

    return run_lock(path if env_info().is_main else None, flag)
