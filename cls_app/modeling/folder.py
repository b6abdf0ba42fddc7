"""The one model-folder format: everything ``predict`` and ``evaluate`` need, in one place.

``saved_models/NAME/`` holds ``config.json`` (BERT config, label names as ``id2label``, and
this app's settings under ``cls_app``), ``vocab.txt`` and ``model.safetensors``. Training
adds ``training_args.json``, ``metrics.json`` and ``train_log.csv`` beside them.
Every file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from ..errors import UserError
from ..fileio import atomic_files, write_json
from ..text.long_text import LongTextOptions
from ..text.tokenizer import CharTokenizer
from ..version import __version__
from .bert import BertClassifier

FORMAT_VERSION = 2  # 2: may hold character bigram embeddings (config ``bigrams``, ``bigram.*`` weights)
READABLE_FORMATS = (1, FORMAT_VERSION)  # 1: no bigram embeddings
MODEL_FILES = ("config.json", "vocab.txt", "model.safetensors")


@dataclass
class FolderMeta:
    """What a BERT folder says besides its weights: enough to run an exported ONNX model."""

    tokenizer: CharTokenizer
    labels: list[str]
    path: Path
    settings: dict = field(default_factory=dict)

    @property
    def max_len(self) -> int:
        return int(self.settings.get("max_len", 128))

    @property
    def long_text(self) -> LongTextOptions:
        """Truncation / chunking as the model was trained (head truncation for older folders)."""
        return LongTextOptions.from_settings(self.settings).resolved(self.max_len)


@dataclass(kw_only=True)
class LoadedModel(FolderMeta):
    """A model folder loaded for inference: its :class:`FolderMeta` and the model."""

    model: BertClassifier


def write_bert_files(
    model: PreTrainedModel, tokenizer: CharTokenizer, out_dir: str | Path, architectures: list[str] | None = None
) -> Path:
    """Save ``config.json``, ``vocab.txt`` and ``model.safetensors`` into ``out_dir``.

    Everything is written into a temporary folder first, then each file is renamed into place:
    weights first, config last, so a folder with a config always has matching weights.
    ``architectures`` overrides the class name recorded in config.json.
    """
    out_dir = Path(out_dir)
    with atomic_files(out_dir, ("model.safetensors", "vocab.txt", "config.json")) as tmp, quiet_transformers():
        model.save_pretrained(tmp, safe_serialization=True)
        if architectures:
            config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
            config["architectures"] = architectures
            write_json(tmp / "config.json", config)
        tokenizer.save(tmp)
    return out_dir


def save_model_dir(
    model: BertClassifier, tokenizer: CharTokenizer, out_dir: str | Path, settings: dict
) -> Path:
    """Write config (with this app's settings), vocab and safetensors weights into ``out_dir``."""
    model.config.cls_app = {"format_version": FORMAT_VERSION, "app_version": __version__, **settings}
    return write_bert_files(model, tokenizer, out_dir)


def rewrite_settings(out_dir: str | Path, settings: dict) -> Path:
    """Replace this app's settings in ``out_dir/config.json`` (the weights stay as they are), atomically."""
    path = Path(out_dir) / "config.json"
    config = _config_json(path)
    config["cls_app"] = {"format_version": FORMAT_VERSION, "app_version": __version__, **settings}
    write_json(path, config)
    return path


def _read_folder_config(path: Path, required: tuple[str, ...]) -> tuple[dict, dict]:
    """``config.json`` and its ``cls_app`` settings, after checking the folder has ``required`` files."""
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}; give the folder that `train --out` wrote")
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise UserError(
            f"model folder {path} is incomplete: missing {', '.join(missing)}; "
            "copy the whole folder again, or retrain (a killed run can be continued with `train --resume`)"
        )
    config = _config_json(path / "config.json")
    settings = config.get("cls_app")
    if not isinstance(settings, dict):
        raise UserError(
            f"{path} was not written by this app (config.json has no 'cls_app' section); "
            "to fine-tune a plain BERT checkpoint use `train --pretrained`"
        )
    if settings.get("format_version") not in READABLE_FORMATS:
        raise UserError(
            f"{path} uses model format {settings.get('format_version')!r}, this version reads "
            f"formats {', '.join(map(str, READABLE_FORMATS))}: retrain the model or use the app version that wrote it "
            f"({settings.get('app_version', 'unknown')})"
        )
    return config, settings


def _check_vocab(path: Path, tokenizer: CharTokenizer, vocab_size: object) -> None:
    if len(tokenizer) != vocab_size:
        raise UserError(
            f"{path}: vocab.txt has {len(tokenizer)} tokens but the model expects "
            f"{vocab_size}; vocab.txt does not belong to this model: copy the folder again"
        )


def load_folder_meta(path: str | Path) -> FolderMeta:
    """Tokenizer, labels and settings of a BERT folder, without loading ``model.safetensors``."""
    path = Path(path)
    config, settings = _read_folder_config(path, ("config.json", "vocab.txt"))
    id2label: Any = config.get("id2label")
    try:
        labels = [str(id2label[str(i)]) for i in range(len(id2label))]
    except (KeyError, TypeError):
        raise UserError(f"{path / 'config.json'} has no usable id2label; the folder is damaged: copy it again"
                        ) from None
    tokenizer = CharTokenizer.from_file(path / "vocab.txt")
    _check_vocab(path, tokenizer, config.get("vocab_size"))
    return FolderMeta(tokenizer=tokenizer, labels=labels, path=path, settings=settings)


def load_model_dir(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model folder; a clear :class:`UserError` for anything missing or corrupt."""
    path = Path(path)
    if (path / "model.onnx").is_file() and not (path / "model.safetensors").is_file():
        raise UserError(f"{path} holds an ONNX export without the PyTorch weights (model.safetensors): "
                        "use --backend onnx")
    _, settings = _read_folder_config(path, MODEL_FILES)
    model = _load_weights(path)
    tokenizer = CharTokenizer.from_file(path / "vocab.txt")
    _check_vocab(path, tokenizer, model.config.vocab_size)
    config: Any = model.config
    labels = _labels(path, config.id2label, config.num_labels)
    _check_settings(path / "config.json", settings, config.max_position_embeddings)
    model.to(device).eval()  # type: ignore[arg-type]
    return LoadedModel(model=model, tokenizer=tokenizer, labels=labels, path=path, settings=settings)


_DAMAGED = "the folder is damaged: copy it again or retrain"


def _config_json(file: Path) -> dict:
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise UserError(f"{file} is not valid JSON ({reason}); {_DAMAGED}") from None
    if not isinstance(config, dict):
        raise UserError(f"{file} holds a JSON {type(config).__name__}, not an object; {_DAMAGED}")
    return config


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars or info lines from ``transformers`` while loading (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _load_weights(path: Path) -> BertClassifier:
    """The weights, refusing a file whose tensors do not all fit config.json (none missing, none left over)."""
    try:
        with quiet_transformers():
            loaded: Any = BertClassifier.from_pretrained(path, output_loading_info=True)
            model, info = loaded
    except Exception as exc:  # corrupt safetensors, shape mismatch, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot load weights from {path / 'model.safetensors'}: {first}; the file is damaged or "
            "does not match config.json: copy the folder again or retrain"
        ) from None
    unfit = sorted(info["missing_keys"]) + sorted(info["unexpected_keys"])
    if unfit:
        raise UserError(
            f"{path / 'model.safetensors'} does not match config.json ({len(unfit)} tensor(s) missing or left over, "
            f"e.g. {unfit[0]}); {_DAMAGED}"
        )
    return model


def _labels(path: Path, id2label: dict, n: int) -> list[str]:
    labels = [id2label.get(i) for i in range(n)]
    if any(label is None for label in labels):
        raise UserError(f"{path / 'config.json'}: id2label does not name every one of the {n} classes; {_DAMAGED}")
    return [str(label) for label in labels]


def _check_settings(file: Path, settings: dict, max_position: int) -> None:
    """This app's settings in config.json: a max_len the model can take, readable long-text options."""
    max_len = settings.get("max_len", 128)
    if isinstance(max_len, bool) or not isinstance(max_len, int) or not 3 <= max_len <= max_position:
        raise UserError(
            f"{file}: cls_app.max_len {max_len!r} is not a whole number from 3 to {max_position} "
            f"(the model's position limit); {_DAMAGED}"
        )
    try:
        LongTextOptions.from_settings(settings).resolved(max_len)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{file}: the long-text settings under cls_app are damaged ({exc}); {_DAMAGED}") from None
