"""``compare`` for multi-label and hierarchical models: the same report, label-set scores.

Every model is scored with its own stored thresholds. The table's ``accuracy`` is the subset
accuracy and a ``micro_f1`` column is added; per-label F1 fills the per-class columns; the
significance test (McNemar, paired bootstrap) runs on subset-correct texts (every label right),
the one per-text right/wrong that label sets have.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..inference.defaults import EVAL_BATCH_SIZE
from ..inference.multilabel import folder_task, folder_text_pair_col, task_of
from ..inference.predictor import load_predictor, model_size_bytes, train_seconds
from ..io.labels import LabelSetData, indicator_matrix, load_label_sets
from ..io.records import DataOptions
from ..multilabel import LabelSetTask
from .compare import Comparison, ModelResult, compare_models, expand_model_dirs, significance, write_report

log = logging.getLogger(__name__)


def run_label_set_models(model_dirs: list[Path], data: LabelSetData,
                         batch_size: int = EVAL_BATCH_SIZE) -> tuple[list[ModelResult], list[str]]:
    """Predict with every model, score the label sets; return the results and the common label order."""
    loaded = [load_predictor(p, batch_size=batch_size, progress=True) for p in model_dirs]
    labels: list[str] = []
    for predictor in loaded:
        if not task_of(predictor).multi:
            raise UserError(f"{predictor.path} is a single-label model: compare it with single-label models")
        labels += [name for name in predictor.labels if name not in labels]
    y = indicator_matrix(data, labels, "are not known to any of the models (they know: {known})")
    names = [p.name if [q.name for q in model_dirs].count(p.name) == 1 else f"{p.parent.name}/{p.name}"
             for p in model_dirs]
    results = []
    for name, path, predictor in zip(names, model_dirs, loaded, strict=True):
        t0 = time.perf_counter()
        proba = predictor.predict_proba(data.texts)
        seconds = time.perf_counter() - t0
        full = np.zeros((len(data), len(labels)))  # a label a model does not know: never predicted
        full[:, [labels.index(n) for n in predictor.labels]] = np.nan_to_num(proba, nan=0.0)
        task = task_of(predictor)
        thresholds = task.thresholds or {}
        per_label = dict(zip(predictor.labels, thresholds.get("per_label") or [], strict=False))
        vector = [per_label.get(n, 2.0) if n in predictor.labels else 2.0 for n in labels]
        common = LabelSetTask(task.task, task.label_sep, task.path_sep, {"global": 0.5, "per_label": vector})
        pred = common.decide(full, labels)
        metrics = common.metrics(y, full, labels)
        log.info("%s: %d texts in %.2fs", name, len(data), seconds)
        results.append(ModelResult(
            name=name, kind=predictor.kind, path=path, metrics=metrics,
            correct=(pred == y.astype(bool)).all(axis=1), predict_seconds=seconds,
            size_bytes=model_size_bytes(path), train_seconds=train_seconds(path),
        ))
    return results, labels


def compare_any(model_dirs: list[str | Path], data_path: str, out_dir: str | Path, *, text_col: str | None = None,
                label_col: str | None = None, encoding: str | None = None, fmt: str | None = None,
                on_bad_row: str = "error", batch_size: int = EVAL_BATCH_SIZE, reference: str | None = None,
                bootstrap: int = 1000, seed: int = 42, text_pair_col: str | None = None) -> Comparison:
    """:func:`~cls_app.evaluation.compare.compare_models`, or for label-set models (the first folder
    says) the same report with label-set scores."""
    import json

    dirs = expand_model_dirs(list(model_dirs))
    task = folder_task(dirs[0])
    if not task.multi:
        return compare_models(dirs, data_path, out_dir, text_col=text_col, label_col=label_col, encoding=encoding,
                              fmt=fmt, on_bad_row=on_bad_row, batch_size=batch_size, reference=reference,
                              bootstrap=bootstrap, seed=seed, text_pair_col=text_pair_col)
    opts = DataOptions(train=data_path, text_col=text_col, label_col=label_col, encoding=encoding, fmt=fmt,
                       on_bad_row=on_bad_row, task=task.task, label_sep=task.label_sep, path_sep=task.path_sep,
                       text_pair_col=text_pair_col or folder_text_pair_col(dirs[0]))
    results, labels = run_label_set_models(dirs, load_label_sets(data_path, opts), batch_size)
    sig = significance(results, reference=reference, n_resamples=bootstrap, seed=seed)
    paths = write_report(results, labels, sig, out_dir, Path(data_path).name)
    return Comparison(json.loads(paths["json"].read_text(encoding="utf-8")), paths, Path(out_dir))
