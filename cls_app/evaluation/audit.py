"""Audit a labeled file: probably wrong labels, duplicates, leakage into dev/test, conflicts.

* **Label issues** (confident learning, Northcutt et al. 2021): out-of-fold class
  probabilities from K-fold cross-validation of a fast model (the ``char_lr`` baseline:
  TF-IDF over character 1-2 grams + LogisticRegression, each fold fitted on the other folds;
  or, with ``model_kind="bert"``, a BERT fine-tuned per fold),
  then cleanlab's ``find_label_issues`` (``prune_by_noise_rate``). A flagged row's score is
  1 - the out-of-fold probability of its given label (higher = more suspicious); the
  suggested label is the most probable class out of fold.
* **Exact duplicates**: the same text after normalisation (NFKC, lower case, whitespace
  removed). Copies with one label are ``duplicate``; copies with different labels are
  ``conflicting labels`` (at most one of them can be right).
* **Near duplicates**: cosine similarity of character 2-3 gram TF-IDF vectors of at least
  :attr:`AuditOptions.near_threshold` (and not exact copies).
* **Leakage**: exact or near copies of a train row in the ``--dev`` / ``--test`` files given.
  Duplicates and leaks are found across scripts: a traditional copy of a simplified row is a copy.
* **Script mix**: the share of simplified, traditional and mixed rows of each file; a dev / test file
  whose traditional (or mixed) share differs from train's by :data:`SCRIPT_GAP` or more is noted (a
  model with ``--script keep`` would meet characters it never saw; docs/scripts.md).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..fileio import atomic_open, write_json
from ..settings import setting
from ..text.script import normalizer
from ..training.settings import BertSettings
from .scripts import script_mix

log = logging.getLogger(__name__)

ISSUE_COLUMNS = ["row", "text", "given_label", "suggested_label", "score", "reason", "related"]
"""Columns of ``label_issues.csv``; ``related`` names the other row of a duplicate / leak."""

REASONS = ("conflicting labels", "label issue", "leak: exact", "leak: near", "duplicate: exact", "duplicate: near")
"""Reasons in ranking order: the file is sorted by reason in this order, then by score."""

MODEL_KINDS = ("tfidf", "ensemble", "bert")
FOLD_KINDS = {"tfidf": ("char_lr",), "ensemble": ("char_lr", "word_lr", "char_nb", "word_nb"), "bert": ("bert",)}
"""The kinds each ``--model-kind`` cross-validates (their probabilities averaged)."""


@dataclass(frozen=True)
class AuditOptions:
    """Settings of :func:`audit` (the CLI reads these defaults)."""

    folds: int = setting(5, "K of the K-fold cross-validation (default: %(default)s)")
    """K of the K-fold cross-validation that gives the out-of-fold probabilities."""
    model_kind: str = setting("tfidf", "model cross-validated for the out-of-fold probabilities: tfidf (character "
                              "TF-IDF + logistic regression), ensemble (the mean of character and word TF-IDF "
                              "logistic regression and naive Bayes; measured no better, docs/analysis.md) or bert "
                              "(default: %(default)s)", choices=MODEL_KINDS)
    """The model cross-validated: ``tfidf`` (the char_lr baseline, seconds) or ``bert`` (a BERT
    fine-tuned per fold with :attr:`bert` settings: minutes per fold)."""
    bert: BertSettings | None = setting(None, cli=False)
    """``bert`` kind: the model and training settings of each fold (None: train's defaults, this seed)."""
    near_threshold: float = setting(0.9, "cosine similarity (char 2-3 gram TF-IDF) from which texts are near "
                                    "duplicates (default: %(default)s)")
    """Cosine similarity (char 2-3 gram TF-IDF) from which two texts count as near duplicates."""
    seed: int = setting(42, "seed of the folds and the model (default: %(default)s)")
    """Seed of the fold split and of the model."""


SCRIPT_GAP = 0.1
"""The difference of traditional-or-mixed share between train and a dev / test file the audit notes."""


def normalize(text: str) -> str:
    """The key exact duplicates share: NFKC, lower case, no whitespace, traditional characters as simplified."""
    return normalizer("t2s").text("".join(unicodedata.normalize("NFKC", text).lower().split()))


def script_notes(mixes: dict[str, dict[str, float]]) -> list[str]:
    """One line per dev / test file whose script mix differs from train's (the first entry) by :data:`SCRIPT_GAP`."""
    def other(mix: dict[str, float]) -> float:
        return mix.get("traditional", 0.0) + mix.get("mixed", 0.0)

    (train_name, train_mix), *rest = mixes.items()
    notes = []
    for name, mix in rest:
        if abs(other(mix) - other(train_mix)) >= SCRIPT_GAP:
            notes.append(f"{name} is {other(mix):.0%} traditional or mixed script, "
                         f"{train_name} {other(train_mix):.0%}: models fitted with --script keep will meet characters "
                         "they never saw (the default "
                         "--script auto reads both as simplified)")
    return notes


def out_of_fold_proba(data: Any, labels: list[str], options: AuditOptions, progress: bool = False) -> np.ndarray:
    """Each row's class probabilities (columns in ``labels`` order) from a model that never saw it:
    K stratified folds, a model fitted on the other folds' rows in memory (``TextClassifier.fit_records``)."""
    from sklearn.model_selection import StratifiedKFold

    from ..bars import progress_bar
    from ..tasks import SingleLabel

    if options.model_kind not in MODEL_KINDS:
        raise UserError(f"--model-kind must be one of {', '.join(MODEL_KINDS)}, got {options.model_kind!r}")
    y = SingleLabel().encode(data, labels)
    counts = np.bincount(y, minlength=len(labels))
    smallest = int(counts[counts > 0].min())
    if options.folds < 2 or options.folds > smallest:
        raise UserError(f"--folds must be between 2 and the size of the smallest class ({smallest}), "
                        f"got {options.folds}")
    out = np.zeros((len(data), len(labels)))
    folds = StratifiedKFold(options.folds, shuffle=True, random_state=options.seed).split(data.texts, y)
    for k, (fit_idx, held_idx) in enumerate(progress_bar(list(folds), enabled=progress, desc="folds", unit="fold",
                                                 leave=False)):
        models = [fold_model(kind, options) for kind in FOLD_KINDS[options.model_kind]]
        log.info("audit fold %d: fitting %s on %d rows", k + 1, ", ".join(m.kind for m in models), len(fit_idx))
        held = [data.texts[i] for i in held_idx]
        for model in models:
            model.fit_records(data.subset(fit_idx.tolist()), None, SingleLabel())
            proba = model.predict_proba(held) / len(models)
            for j, name in enumerate(model.labels):  # a class missing from a fold keeps probability 0
                out[held_idx, labels.index(name)] += proba[:, j]
    return out


def fold_model(kind: str, options: AuditOptions) -> Any:
    """An unfitted model of ``kind`` for one fold (a BERT with :attr:`AuditOptions.bert`, no token cache)."""
    from ..models.base import TextClassifier, kind_class

    if kind_class(kind).settings_class is BertSettings:
        bert = replace(options.bert or BertSettings(), cache_dir=None)
        return TextClassifier(kind=kind, **{**bert.to_kwargs(), "seed": options.seed})
    return TextClassifier(kind=kind, seed=options.seed)


def label_issues(y: np.ndarray, oof: np.ndarray) -> np.ndarray:
    """Indices of rows cleanlab flags, most suspicious first (by self-confidence)."""
    from cleanlab.filter import find_label_issues

    return np.asarray(find_label_issues(labels=y, pred_probs=oof, return_indices_ranked_by="self_confidence",
                                        n_jobs=1), dtype=int)


def exact_groups(texts: Sequence[str]) -> list[list[int]]:
    """Groups (2 or more rows, file order) of texts equal after :func:`normalize`."""
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        groups.setdefault(normalize(t), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def near_pairs(
    a: Sequence[str], b: Sequence[str] | None, threshold: float, chunk: int = 2000
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, cosine)`` with cosine >= threshold between ``a`` and ``b`` (``b`` None:
    within ``a``, ``i < j``), over character 2-3 gram TF-IDF of the normalised texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    na = [normalize(t) for t in a]
    nb = na if b is None else [normalize(t) for t in b]
    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), sublinear_tf=True, dtype=np.float32)
    vec.fit(na + ([] if b is None else nb))
    xa = vec.transform(na)
    xb = xa if b is None else vec.transform(nb)
    out = []
    for start in range(0, xa.shape[0], chunk):
        sims = (xa[start:start + chunk] @ xb.T).tocoo()
        for i, j, s in zip(sims.row + start, sims.col, sims.data, strict=True):
            if s >= threshold and (b is not None or i < j) and na[i] != nb[j]:
                out.append((int(i), int(j), float(s)))
    return out


def _row(data, i: int) -> int:
    line = data.line_of(i)
    return line if line is not None else i + 1


def _issue(data, i: int, suggested: str, score: float, reason: str, related: str = "") -> dict:
    return {"row": _row(data, i), "text": data.texts[i], "given_label": data.labels[i],
            "suggested_label": suggested, "score": round(score, 6), "reason": reason, "related": related}


def duplicate_issues(train, threshold: float) -> list[dict]:
    """Conflicting labels, exact and near duplicates within ``train``."""
    out = []
    for group in exact_groups(train.texts):
        names = {train.labels[i] for i in group}
        first = group[0]
        for i in group[1:] if len(names) == 1 else group:
            others = ", ".join(f"row {_row(train, k)} ({train.labels[k]})" for k in group if k != i)
            if len(names) == 1:
                out.append(_issue(train, i, "", 1.0, "duplicate: exact", f"same text as row {_row(train, first)}"))
            else:
                out.append(_issue(train, i, "", 1.0, "conflicting labels", f"same text as {others}"))
    for i, j, s in near_pairs(train.texts, None, threshold):
        out.append(_issue(train, j, "", s, "duplicate: near", f"similar to row {_row(train, i)} ({train.labels[i]})"))
    return out


def leak_issues(train, other, threshold: float) -> list[dict]:
    """Rows of ``train`` whose text is in ``other`` (a dev or test file) exactly or nearly."""
    name = getattr(other, "source", "other")
    keys: dict[str, int] = {}
    for j, t in enumerate(other.texts):
        keys.setdefault(normalize(t), j)
    out = []
    for i, t in enumerate(train.texts):
        found = keys.get(normalize(t))
        if found is not None:
            out.append(_issue(train, i, "", 1.0, "leak: exact",
                              f"{name} row {_row(other, found)} ({other.labels[found]})"))
    for i, j, s in near_pairs(train.texts, other.texts, threshold):
        out.append(_issue(train, i, "", s, "leak: near", f"{name} row {_row(other, j)} ({other.labels[j]})"))
    return out


@dataclass
class AuditResult:
    """The ranked issues, the out-of-fold probabilities and a count per reason."""

    issues: pd.DataFrame
    oof: np.ndarray
    flagged: np.ndarray  # indices cleanlab flagged, most suspicious first
    labels: list[str]
    given: list[str]
    scripts: dict[str, dict[str, float]] = field(default_factory=dict)
    """The script mix of each file audited (train first): ``{file: {script: share}}``."""

    def script_notes(self) -> list[str]:
        """The dev / test files whose script mix differs from train's."""
        return script_notes(self.scripts) if self.scripts else []

    def oof_accuracy(self) -> float:
        """Accuracy of the out-of-fold predictions against the given labels."""
        index = {n: i for i, n in enumerate(self.labels)}
        y = np.array([index[n] for n in self.given])
        return float(np.mean(self.oof.argmax(axis=1) == y)) if len(y) else 0.0

    def counts(self) -> dict[str, int]:
        found = self.issues["reason"].value_counts().to_dict() if len(self.issues) else {}
        return {r: int(found.get(r, 0)) for r in REASONS}


def audit(train, others: Sequence = (), options: AuditOptions = AuditOptions(), progress: bool = False) -> AuditResult:
    """Run every check on ``train`` (a LabeledData); ``others``: dev / test data for leakage."""
    from ..io.records import label_list

    labels = label_list(train)
    index = {n: i for i, n in enumerate(labels)}
    y = np.array([index[n] for n in train.labels])
    oof = out_of_fold_proba(train, labels, options, progress)
    flagged = label_issues(y, oof)
    rows = [_issue(train, int(i), labels[int(oof[i].argmax())], 1.0 - float(oof[i, y[i]]), "label issue")
            for i in flagged]
    rows += duplicate_issues(train, options.near_threshold)
    for other in others:
        rows += leak_issues(train, other, options.near_threshold)
    frame = pd.DataFrame(rows, columns=ISSUE_COLUMNS)
    if len(frame):
        frame["_rank"] = frame["reason"].map({r: k for k, r in enumerate(REASONS)})
        frame = frame.sort_values(["_rank", "score", "row"], ascending=[True, False, True], kind="stable")
        frame = frame.drop(columns="_rank").reset_index(drop=True)
    mixes = {str(getattr(d, "source", name)): script_mix(d.texts)
             for d, name in [(train, "train"), *((o, f"other {k + 1}") for k, o in enumerate(others))]}
    return AuditResult(frame, oof, flagged, labels, list(train.labels), mixes)


def write_audit(result: AuditResult, out_dir: str | Path, options: AuditOptions, train) -> list[Path]:
    """Write ``label_issues.csv`` (ranked) and ``audit.json`` (counts, settings) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "label_issues.csv", out_dir / "audit.json"
    with atomic_open(csv_path, "w", newline="") as fh:
        result.issues.to_csv(fh, index=False)
    settings = asdict(options)
    if options.bert is not None:  # the BERT of each fold: its model and its training, as train records them
        settings.update(bert=asdict(options.bert.model), bert_train=asdict(options.bert.train),
                        threads=options.bert.threads)
    write_json(json_path, {
        "train": str(train.source), "rows": len(train), "labels": result.labels, "settings": settings,
        "out_of_fold_accuracy": round(result.oof_accuracy(), 6), "counts": result.counts(),
        "scripts": result.scripts, "script_notes": result.script_notes(),
        "label_issue_method": "cleanlab.filter.find_label_issues(prune_by_noise_rate), ranked by self-confidence",
    })
    return [csv_path, json_path]
