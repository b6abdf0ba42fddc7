"""The ``fasttext`` kind: the fastText library's supervised classifier (Joulin et al. 2017).

A text becomes one line of tokens: its characters (``c`` + char), then its jieba words (``w`` +
word), so fastText's word n-grams (``word_ngrams``, default 2) add character bigrams and word
bigrams, hashed into ``buckets``. Training writes that file to a temporary folder and calls
``fasttext.train_supervised`` with one thread (repeatable for ``seed``); ``autotune=True`` lets
fastText search its settings on the dev rows instead (``autotune_seconds``). Predicting calls the
model's C++ ``predict`` per line (the library's Python wrapper breaks on NumPy 2); its sentence
vector is the feature the out-of-domain distance reads (Mahalanobis, as BERT's [CLS] vector).

The folder: ``classifier.json`` (family ``fasttext``, format version, labels, task, settings,
scores) and ``model.bin`` (fastText's own binary format, not pickle).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..baselines.pipelines import jieba_words
from ..io.pairs import PAIR_SEP
from ..tasks import Task, task_from_settings
from ..version import __version__
from .base import register
from .described import SmallKind
from .options import InferenceOptions

log = logging.getLogger(__name__)

FAMILY = "fasttext"
FORMAT_VERSION = 1
MODEL_FILE = "model.bin"
LABEL_PREFIX = "__label__"


@dataclass(frozen=True)
class FastTextSettings:
    """fastText's supervised settings (its defaults, but for ``dim``, ``epoch``, ``lr``, ``word_ngrams``, ``buckets``
    (200,000 hashed n-gram rows instead of 2 million: a 30 MB folder rather than 800 MB), ``words`` and
    ``min_examples``). ``dim``, ``epoch`` and ``min_examples`` were chosen on the dev splits of the seven sets
    of ``bench/fast_defaults.py`` (docs/fast_models.md)."""

    dim: int = 32
    epoch: int = 50
    min_examples: int = 200_000  # at least this many training lines seen: more epochs for a small training set
    lr: float = 0.5
    word_ngrams: int = 2
    min_count: int = 1
    buckets: int = 200_000
    loss: str = "softmax"
    words: bool = True  # jieba words besides the characters
    autotune: bool = False  # let fastText search the settings on dev (autotune_seconds)
    autotune_seconds: int = 60
    threads: int = 1


def tokens(text: str, words: bool) -> str:
    """The fastText line of ``text``: its characters, then (``words``) its jieba words; a pair's second
    text after a ``__sep__`` token."""
    parts = []
    for piece in text.split(PAIR_SEP):
        chars = ["c" + ch for ch in piece if not ch.isspace()]
        if words:
            chars += ["w" + w for w in jieba_words(piece) if w.strip()]
        parts.append(" ".join(chars))
    return " __sep__ ".join(parts)


@register("fasttext", family=FAMILY)
class FastTextClassifier(SmallKind):
    """fastText through the one model interface; settings: :class:`FastTextSettings` fields."""

    ood_method = "mahalanobis"  # on fastText's sentence vectors
    settings_class = FastTextSettings
    cost = 4.0
    predict_cost = 1.5
    in_main_job = True
    quick_settings = {"epoch": 10, "buckets": 20000, "dim": 16, "min_examples": 2000}

    def fit_task(self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                 **extra: Any) -> FastTextClassifier:
        import fasttext

        labels = task.vocabulary(train)
        if dev is not None:
            task.encode(dev, labels)  # a label train never saw is a user error
        s = self.settings
        if s.words:
            from ..baselines.storage import init_jieba

            init_jieba()
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="cls_fasttext_") as tmp:
            path = Path(tmp) / "train.txt"
            path.write_text("".join(f"{LABEL_PREFIX}{labels.index(y)} {tokens(t, s.words)}\n"
                                    for t, y in zip(train.texts, train.labels, strict=True)), encoding="utf-8")
            epoch = max(s.epoch, -(-s.min_examples // max(1, len(train))))
            options: dict[str, Any] = {"dim": s.dim, "epoch": epoch, "lr": s.lr, "wordNgrams": s.word_ngrams,
                                       "minCount": s.min_count, "bucket": s.buckets, "loss": s.loss,
                                       "seed": self.seed, "thread": s.threads, "verbose": 0}
            if s.autotune and dev is not None and len(dev):
                valid = Path(tmp) / "dev.txt"
                valid.write_text("".join(f"{LABEL_PREFIX}{labels.index(y)} {tokens(t, s.words)}\n"
                                         for t, y in zip(dev.texts, dev.labels, strict=True)), encoding="utf-8")
                options = {"autotuneValidationFile": str(valid), "autotuneDuration": s.autotune_seconds,
                           "seed": self.seed, "thread": s.threads, "verbose": 0}
            self.model = fasttext.train_supervised(input=str(path), **options)
        seconds = time.perf_counter() - t0
        self.labels, self.task, self.pairs, self.text_pair_col = labels, task, bool(text_pair_col), text_pair_col
        self.meta = {"kind": FAMILY, "family": FAMILY, "format_version": FORMAT_VERSION, "app_version": __version__,
                     "name": self.kind, "labels": labels,
                     "settings": {**asdict(s), **self.common_params()},
                     "train_rows": len(train), "train_seconds": round(seconds, 3), "files": [MODEL_FILE],
                     "epochs": int(self.model.f.getArgs().epoch)}
        if s.autotune:
            args = self.model.f.getArgs()
            self.meta["autotuned"] = {"dim": args.dim, "epoch": args.epoch, "lr": args.lr,
                                      "word_ngrams": args.wordNgrams, "buckets": args.bucket}
        if text_pair_col:
            self.meta["text_pair_col"] = text_pair_col
        if dev is not None and len(dev):
            self.settle_on_dev(train, dev, self.analyse(list(dev.texts)), self.metric, self.seed)
        self.meta.update(self.task.folder_fields())
        log.info("fasttext: trained in %.1fs", seconds)
        return self

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"dim": trial.suggest_categorical("dim", [16, 32, 64]),
                "epoch": trial.suggest_int("epoch", 10, 80, log=True),
                "lr": trial.suggest_float("lr", 0.05, 1.0, log=True),
                "word_ngrams": trial.suggest_int("word_ngrams", 1, 3)}

    @classmethod
    def fit_seconds_prior(cls, rows: int, chars: float) -> float:
        return 1.0 + 2e-6 * max(rows * 50, 200_000) * max(chars, 1.0) / 20.0

    def scores(self, texts: list[str]) -> np.ndarray:
        return self.analyse(texts)[0]

    def analyse(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        """Probabilities and sentence vectors (one tokenisation per text)."""
        k = len(self.labels)
        probs = np.zeros((len(texts), k))
        vectors = np.zeros((len(texts), self.model.get_dimension()), dtype=np.float32)
        words = bool(self.meta.get("settings", {}).get("words", True))
        for i, text in enumerate(texts):
            line = tokens(text, words)
            for p, label in self.model.f.predict(line, k, 0.0, "strict"):
                probs[i, int(label[len(LABEL_PREFIX):])] = p
            vectors[i] = self.model.get_sentence_vector(line)
        probs = np.clip(probs, 0.0, None)
        total = probs.sum(axis=1, keepdims=True)
        return probs / np.where(total > 0, total, 1.0), vectors

    def write_weights(self, folder: Path) -> None:
        self.model.save_model(str(folder / MODEL_FILE))

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> FastTextClassifier:
        import fasttext

        meta = cls.folder_meta(path, options, FAMILY, FORMAT_VERSION, MODEL_FILE)
        obj = cls.blank("fasttext")
        obj.restore_settings(path, meta.get("settings", {}))
        obj.model = fasttext.FastText._FastText(model_path=str(path / MODEL_FILE))  # load_model() prints a warning
        obj.meta, obj.labels, obj.path, obj.options = meta, list(meta["labels"]), path, options
        obj.task = task_from_settings(meta)
        obj.text_pair_col = meta.get("text_pair_col") or None
        obj.pairs = bool(obj.text_pair_col)
        return obj
