"""A model kind in one file, from outside the package: ``char_centroid``, the nearest class centroid of a
text's character counts (hashed into ``buckets``, raised to ``power``, L2-normalised).

Installed with the package that holds it, through the entry-point group ``cls_app.kinds``::

    [project.entry-points."cls_app.kinds"]
    char_centroid = "char_centroid:CharCentroid"

it then works wherever the built-in kinds do: ``TextClassifier(kind="char_centroid")``, ``train
--with-baselines --kinds ... char_centroid``, ``compare``, the recommendation, ``predict``, ``serve``;
``cls_app.testing.check_kind("char_centroid")`` runs the checks every kind passes. See
docs/adding_a_kind.md.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cls_app import register
from cls_app.models import InferenceOptions, SmallKind
from cls_app.tasks import Task, softmax, task_from_settings

FAMILY = "char_centroid"
FORMAT_VERSION = 1
WEIGHTS = "centroids.safetensors"


@dataclass(frozen=True)
class CentroidSettings:
    """The kind's tunable settings: ``TextClassifier(kind="char_centroid", buckets=..., power=...)``."""

    buckets: int = 4096
    power: float = 0.5
    sharpness: float = 20.0  # softmax(sharpness * cosine): how confident the probabilities are


@register("char_centroid", family=FAMILY)
class CharCentroid(SmallKind):
    """The nearest class centroid of hashed character counts."""

    settings_class = CentroidSettings
    cost = 0.8  # cheaper than a TF-IDF baseline: fitted first, preferred on ties
    takes_pairs = False
    ood_method = None  # no distance of its own: the character model and the confidence still score texts

    def init_fields(self, kind: str | None) -> None:
        super().init_fields(kind)
        self.centroids: np.ndarray | None = None

    def features(self, texts: list[str]) -> np.ndarray:
        s = self.settings
        x = np.zeros((len(texts), s.buckets))
        for i, text in enumerate(texts):
            for ch in text:
                x[i, zlib.crc32(ch.encode("utf-8", "surrogatepass")) % s.buckets] += 1.0
        x = x ** s.power
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms > 0, norms, 1.0)

    def fit_task(self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                 **extra: Any) -> CharCentroid:
        labels = task.vocabulary(train)
        y = task.encode(train, labels)
        if dev is not None:
            task.encode(dev, labels)  # a label train never saw is one clear error
        x = self.features(list(train.texts))
        centroids = np.stack([x[y == c].mean(axis=0) for c in range(len(labels))])
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        self.centroids = centroids / np.where(norms > 0, norms, 1.0)
        self.labels, self.task = labels, task
        self.meta = {"family": FAMILY, "format_version": FORMAT_VERSION, "name": self.kind, "labels": labels,
                     "settings": {**asdict(self.settings), **self.common_params()},
                     "train_rows": len(train), "files": [WEIGHTS]}
        if dev is not None and len(dev):  # calibration, decisions and abstention, fitted on dev
            self.settle_on_dev(train, dev, self.analyse(list(dev.texts)), self.metric, self.seed)
        self.meta.update(self.task.folder_fields())
        return self

    def scores(self, texts: list[str]) -> np.ndarray:
        assert self.centroids is not None
        return softmax(self.settings.sharpness * self.features(texts) @ self.centroids.T)

    def write_weights(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"centroids": np.ascontiguousarray(self.centroids)}, str(folder / WEIGHTS))

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> CharCentroid:
        from safetensors.numpy import load_file

        meta = cls.folder_meta(path, options, FAMILY, FORMAT_VERSION, WEIGHTS)
        obj = cls.blank(FAMILY)
        obj.restore_settings(path, meta["settings"])
        obj.centroids = load_file(str(path / WEIGHTS))["centroids"]
        obj.meta, obj.labels, obj.path, obj.options = meta, list(meta["labels"]), path, options
        obj.task = task_from_settings(meta)
        return obj
