"""The BERT kind: a character-level BERT ([CLS] -> linear head) fine-tuned end to end.

Fitting is :func:`cls_app.training.pipeline.train_bert` on records in memory; the fitted model
predicts from memory straight away (no reload). Prediction: texts are encoded, sorted by length
within windows of ``options.window`` inputs and batched with their neighbours in length (little
padding), run under ``torch.inference_mode`` through :mod:`cls_app.modeling.fast` (fused QKV,
last layer for [CLS] only) and scattered back to their input order; ``quantize`` adds dynamic
int8 (:mod:`cls_app.modeling.quantize`); ``backend="onnx"`` runs the folder's exported
``model.onnx`` in ONNX Runtime with the same tokenization, batching and long-text handling.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_files, write_json
from ..io.records import DataOptions
from ..settings import default
from ..tasks import Task, task_from_settings
from ..text.long_text import LongTextOptions
from ..training.settings import BertSettings
from .base import TextClassifier, register
from .folders import ABSTAIN_FILES
from .options import InferenceOptions

if TYPE_CHECKING:  # torch and transformers load on first use: listing the kinds stays light
    from ..training.pipeline import RunFolder, TrainedBert

log = logging.getLogger(__name__)


def with_features(module: Any) -> Any:
    """``module`` returning the [CLS] vector after the logits, when it can (the fast view); else as it is."""
    if hasattr(module, "features"):
        module.features = True
    return module


@register("bert", family="bert")
class BertTextClassifier(TextClassifier):
    """A BERT classifier; settings: :class:`~cls_app.training.settings.BertSettings` fields by name
    (``layers``, ``hidden``, ``epochs``, ``lr``, ``max_len``, ``pretrained``, ``truncation``, ...)."""

    dtype = np.float32
    ood_method = "mahalanobis"
    settings_class = BertSettings
    cost = 100.0
    predict_cost = 30.0
    in_main_job = True
    time_limited = True
    exportable = True
    tasks = ("single-label", "multi-label", "hierarchical")
    dev_basis = "dev decisions of the best checkpoint"
    quick_settings = {"layers": 1, "hidden": 32, "heads": 2, "min_freq": 1, "max_len": 32, "epochs": 4,
                      "batch_size": 16, "lr": 3e-3, "seed": 0}
    quick_label_set_settings = {"epochs": 12, "lr": 5e-3}
    quick_pair_settings = {"epochs": 8}

    def init_fields(self, kind: str | None) -> None:
        super().init_fields(kind)
        self.network: Any = None  # the trained torch module (None with the ONNX backend)
        self.module: Any = None  # what predicts: the fast view, int8, or an ONNX session
        self.tokenizer: Any = None
        self.folder_settings: dict = {}
        self.summary: dict = {}
        self.dev_metrics: dict = {}
        self.max_len = 128
        self.long_text = LongTextOptions()
        self.device = "cpu"

    def make_settings(self, values: dict[str, Any]) -> BertSettings:
        """:class:`BertSettings` from flat names; the common ``seed`` and ``metric`` are its training's."""
        settings = BertSettings.from_kwargs(**values, seed=self.seed, metric=self.metric)
        self.max_len = settings.model.max_len
        return settings

    def settings_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.settings.to_kwargs().items() if k not in ("seed", "metric")}

    def validate(self, task: Task) -> None:
        from ..training.settings import check_bert_settings

        check_bert_settings(replace(self.settings, train=replace(self.settings.train)), task)

    @classmethod
    def fit_seconds_prior(cls, rows: int, chars: float) -> float:
        # a scratch 4-layer BERT at 128 tokens on 2 cores: about 60 texts/s an epoch, 4 epochs
        return 10.0 + 4 * rows / 60.0 * max(0.3, min(chars, 126) / 64.0)

    def estimate_fit_seconds(self, train: Any, dev: Any, task: Task) -> tuple[float, bool]:
        """A few real optimizer steps of this model on these texts, timed (:func:`~cls_app.training.pipeline.
        estimate_seconds`): a scratch BERT's speed differs two or three times between CPUs of the same name."""
        from ..training.pipeline import estimate_seconds

        if dev is None:
            train, dev = task.split(train, default(DataOptions, "dev_fraction"), self.settings.train.seed)
        total, self.fixed_estimate = estimate_seconds(train, dev, task, replace(self.settings,
                                                                                train=replace(self.settings.train)))
        return total, True

    def fixed_fit_seconds(self) -> float:
        return float(getattr(self, "fixed_estimate", 0.0))

    # ------------------------------------------------------------------ fitting

    def fit_task(self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                 run: RunFolder | None = None, **extra: Any) -> BertTextClassifier:
        """Fine-tune on ``train`` (without ``dev``: a held-out part of it); with ``run``, write as it goes."""
        if dev is None:
            train, dev = task.split(train, default(DataOptions, "dev_fraction"), self.settings.train.seed)
        from ..training.pipeline import train_bert

        trained = train_bert(train, dev, task, self.settings, run, text_pair_col)
        self.adopt(trained, run.out if run is not None else None)
        if not trained.is_main:  # under torchrun rank 0 alone goes on
            return self
        raw = trained.result.best_dev_probs  # the best checkpoint's dev probabilities (None after a resume)
        if raw is None or len(raw) != len(dev):
            raw = self.scores(list(dev.texts))
        self.fit_decisions(dev, raw, self.settings.train.metric, self.settings.train.seed)
        self.fit_abstention(train, dev, self.abstain, self.settings.train.seed)
        if run is not None:
            self.save_extras(run.out)
        self.folder_settings.update(self.task.folder_fields())
        self.summary["dev_final"] = self.dev_scores(dev)
        if self.decisions is not None:
            self.summary["decisions"] = self.decisions
        if run is not None:  # the task's decisions and the settings (script included) into OUT/config.json
            from ..modeling.folder import rewrite_settings

            rewrite_settings(run.out, self.folder_settings)
        return self

    def adopt(self, trained: TrainedBert, path: Path | None) -> None:
        """Predict with a freshly trained model, from memory."""
        from ..modeling.fast import fast_classifier

        self.network, self.tokenizer, self.labels = trained.model.eval(), trained.tokenizer, list(trained.labels)
        self.task, self.folder_settings, self.summary = trained.task, dict(trained.settings), dict(trained.summary)
        self.dev_metrics = trained.result.best_dev
        self.device = trained.device
        self.module = with_features(fast_classifier(self.network) if self.options.fast else self.network)
        self._settings_from_folder()
        self.path = path
        # the settings it was fitted with, so a loaded folder's get_params() / clone() are the same
        self.folder_settings["params"] = {**{k: list(v) if isinstance(v, tuple) else v
                                             for k, v in self.settings_params().items()}, **self.common_params()}

    def _settings_from_folder(self) -> None:
        self.max_len = int(self.folder_settings.get("max_len", 128))
        options = LongTextOptions.from_settings(self.folder_settings)
        if self.options.long_text:
            options = replace(options, **self.options.long_text)
        self.long_text = options.resolved(self.max_len)
        self.text_pair_col = self.folder_settings.get("text_pair_col") or None
        self.pairs = bool(self.text_pair_col) or bool(getattr(getattr(self.network, "config", None), "text_pairs",
                                                              False))

    # ------------------------------------------------------------------ predicting

    def scores(self, texts: list[str]) -> np.ndarray:
        return self.analyse(texts)[0]

    def analyse(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        """Probabilities and (with the fast torch module) the final [CLS] vectors, from one forward pass."""
        import torch

        from ..runtime.device import autocast
        from ..runtime.engine import predict_text_logits

        with autocast(torch.device(self.device), self.forward_precision()):
            out = predict_text_logits(self.module, self.tokenizer, texts, self.max_len, self.long_text,
                                      self.forward_batch(), device=self.device)
        k = len(self.labels)
        features = out[:, k:] if out.shape[1] > k else None
        return self.task.probabilities(out[:, :k]), features

    def describe(self) -> dict:
        out = super().describe()
        out.update({"max_len": self.max_len, "batch_size": self.forward_batch(),
                    "quantized": self.options.quantize, "backend": self.options.backend,
                    "precision": "fp32" if self.forward_precision() is None else "bf16",
                    "long_text": asdict(self.long_text)})
        return out

    def train_seconds(self) -> float | None:
        value = self.summary.get("train_seconds")
        return float(value) if isinstance(value, int | float) else None

    # ------------------------------------------------------------------ folders

    def save(self, path: str | Path) -> Path:
        """Write config.json, vocab.txt and model.safetensors (and the run's metrics.json when fitted here)."""
        from ..modeling.folder import MODEL_FILES, save_model_dir

        path = Path(path)
        if self.network is None:
            if self.path is None:
                raise UserError("this bert model is not fitted: nothing to save")
            if path.resolve() != self.path.resolve():
                names = [n for n in (*MODEL_FILES, "model.onnx", "model.int8.onnx", *ABSTAIN_FILES)
                         if (self.path / n).is_file()]
                with atomic_files(path, names) as tmp:
                    for name in names:
                        shutil.copy2(self.path / name, tmp / name)
        else:
            save_model_dir(self.network, self.tokenizer, path, self.folder_settings)
            if self.summary and not (path / "metrics.json").is_file():
                write_json(path / "metrics.json", self.summary)
            self.save_extras(path)
        self.path = path
        return path

    def export_onnx(self, out: str | Path | None = None, quantize: bool = False) -> list[Path]:
        """Write the folder as ``model.onnx`` (with ``quantize`` also ``model.int8.onnx``; :mod:`cls_app.modeling.
        onnx_export`) into the model's folder or ``out``."""
        from ..modeling.onnx_export import export_onnx

        if self.path is None:
            raise UserError("export a saved bert folder: save() it first")
        return export_onnx(self.path, out, quantize=quantize)

    def restore_params(self, path: Path) -> None:
        """The settings the folder was fitted with: config.json's ``params``, else a run folder's
        ``training_args.json``, else the defaults (with a warning)."""
        params = self.folder_settings.get("params")
        try:
            if isinstance(params, dict):
                self.settings = self.make_settings(self.restore_common(params))
                return
            args = path / "training_args.json"
            if args.is_file():
                from ..training.settings import job_from_args

                recorded = json.loads(args.read_text(encoding="utf-8"))
                self.settings = job_from_args(recorded, str(path)).bert
                self.seed, self.metric = self.settings.train.seed, self.settings.train.metric
                self.script = str((recorded.get("job") or {}).get("script") or self.script)
        except (UserError, ValueError, TypeError) as exc:
            log.warning("%s: its recorded settings do not load (%s); get_params() gives the defaults", path, exc)

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> BertTextClassifier:
        """A folder written by ``run.py train`` (see :mod:`cls_app.modeling.folder`)."""
        from ..modeling.fast import fast_classifier
        from ..modeling.folder import load_folder_meta, load_model_dir
        from ..runtime.device import configure_threads

        obj = cls.blank("bert")
        obj.options = options
        n = configure_threads(options.threads)
        if options.backend == "onnx":
            from ..runtime.onnx import OnnxLogits, onnx_path

            meta = load_folder_meta(path)
            obj.network, obj.module = None, OnnxLogits(onnx_path(path, options.quantize), threads=n)
        else:
            meta = loaded = load_model_dir(path)
            obj.network = loaded.model
            obj.module = fast_classifier(loaded.model) if options.fast else loaded.model
            if options.quantize:
                from ..modeling.quantize import quantize_linear_int8

                obj.module = quantize_linear_int8(obj.module)
            obj.module = with_features(obj.module)
        obj.tokenizer, obj.labels, obj.path = meta.tokenizer, list(meta.labels), Path(path)
        obj.folder_settings = dict(meta.settings)
        obj.restore_params(path)
        obj.task = task_from_settings(meta.settings)
        obj._settings_from_folder()
        return obj
