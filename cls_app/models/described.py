"""What the model kinds that describe themselves in one JSON file share (the TF-IDF baselines, fasttext,
textcnn): scores recorded per split, the training time, settling calibration / decisions / abstention on dev;
and, for the small kinds (``classifier.json`` beside their weights), saving and checking their folder."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..fileio import atomic_dir, write_json
from ..tasks import headline
from .base import TextClassifier
from .folders import KIND_FILE
from .options import InferenceOptions

RECORDED = ("n", "accuracy", "macro_f1", "weighted_f1", "micro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
"""The headline scores a folder's description keeps per split."""

class Described(TextClassifier):
    """A kind whose folder description is the dict :attr:`meta`."""

    meta: dict

    def init_fields(self, kind: str | None) -> None:
        super().init_fields(kind)
        self.meta = {}

    def restore_settings(self, path: Path, recorded: dict) -> None:
        """The settings (and the common ones: seed, metric, script) a folder records; names this version does not
        know are ignored."""
        values = self.restore_common(recorded)
        known = {f.name for f in fields(self.settings_class)} if self.settings_class is not None else set()
        try:
            self.settings = self.make_settings({k: v for k, v in values.items() if k in known})
        except UserError as exc:
            raise UserError(f"{path}: the recorded settings do not load ({exc}); retrain it") from None

    def record(self, split: str, metrics: dict) -> None:
        """Keep ``split``'s headline scores in the description (written by :meth:`save`)."""
        self.meta[split] = {k: round(float(v), 6) for k, v in headline(metrics).items() if k in RECORDED}

    def train_seconds(self) -> float | None:
        value = self.meta.get("train_seconds")
        return float(value) if isinstance(value, int | float) else None

    def settle_on_dev(self, train: Any, dev: Any, analysed: tuple[Any, Any], metric: str | None, seed: int) -> None:
        """Calibration and decisions, then abstention, fitted on the dev rows from ``analysed`` (this model's
        :meth:`analyse` of them: one pass); the honest dev scores and decisions recorded."""
        self.fit_decisions(dev, analysed[0], metric, seed)
        self.fit_abstention(train, dev, self.abstain, seed, analysed)
        self.record("dev", self.dev_scores(dev))
        if self.decisions is not None:
            self.meta["decisions"] = self.decisions


class SmallKind(Described):
    """fasttext and textcnn: ``classifier.json`` (:data:`~.folders.KIND_FILE`) beside their weights."""

    def write_weights(self, folder: Path) -> None:
        """Write the weights into ``folder`` (the kinds implement it)."""
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        if not self.meta:
            raise UserError(f"this {self.kind} model is not fitted: nothing to save")
        out = Path(path)
        with atomic_dir(out) as tmp:
            self.write_weights(tmp)
            write_json(tmp / KIND_FILE, self.meta)
            self.save_extras(tmp)
        self.path = out
        return out

    def describe(self) -> dict:
        out = super().describe()
        out.update({k: v for k, v in self.meta.get("settings", {}).items() if isinstance(v, int | float | str)})
        return out

    @staticmethod
    def folder_meta(path: Path, options: InferenceOptions, family: str, version: int, weights: str,
                    onnx: bool = False) -> dict:
        """The folder's description, after refusing options the kind lacks, another format and missing weights.

        A kind with an ONNX export (``onnx``) takes ``--backend onnx`` (with ``--quantize``: the int8 export),
        and then needs no torch weights."""
        if options.long_text or (not onnx and (options.backend != "torch" or options.quantize)):
            what = "the long-text options" if onnx else "--quantize, --backend and the long-text options"
            raise UserError(f"{path} is a {family} model: {what} apply to BERT models only")
        if options.quantize and options.backend != "onnx":
            raise UserError(f"{path} is a {family} model: --quantize runs its int8 ONNX export; add --backend onnx "
                            f"(after `python run.py export --model {path} --quantize`)")
        meta = json.loads((path / KIND_FILE).read_text(encoding="utf-8"))
        if meta.get("format_version") != version:
            raise UserError(f"{path / KIND_FILE}: {family} folder format {meta.get('format_version')!r}, this "
                            f"version reads {version}: retrain it")
        if options.backend == "torch" and not (path / weights).is_file():
            raise UserError(f"{path} lacks {weights}: copy the whole folder, or retrain")
        return meta
