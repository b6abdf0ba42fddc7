"""``run.py select`` and ``run.py import-labels``: which unlabeled texts to label next, and the annotation
tools' formats both ways.

Selection: the pool's texts, minus those already labeled (``--labeled``), exact and near duplicates
collapsed (the same text once case, spaces, punctuation and digits are set aside), are scored by the
model once (:meth:`~cls_app.models.TextClassifier.score`):

* ``margin``: the smallest gap between the two most probable classes first (label sets: the label
  probability nearest its decision threshold);
* ``entropy``: the most spread class distribution first;
* ``random``: a uniform sample (the control);
* ``diverse``: the pool split into ``budget`` clusters (k-means on character TF-IDF vectors reduced
  to 64 dimensions), the smallest-margin text of each; clusters without a text left give their turn
  to the next smallest margins.

``balance`` deals the picks out across the model's predicted classes in turn. Every row says the
text, its score, the model's suggested label and its probability.

Formats: ``csv`` / ``tsv`` / ``jsonl`` (by extension), ``label-studio`` (tasks JSON with
``predictions`` — ``model_version``, ``score`` and a ``choices`` result — and the label config XML
beside it), ``doccano`` (JSONL with ``text`` and ``label``). :func:`import_labels` reads their exports back.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import write_json, write_text
from ..models.base import TextClassifier
from ..settings import setting

log = logging.getLogger(__name__)

STRATEGIES = ("margin", "entropy", "random", "diverse")
FORMATS = ("table", "label-studio", "doccano")
FROM_NAME, TO_NAME = "label", "text"  # the Label Studio control and object names of the config written


@dataclass(frozen=True)
class SelectSettings:
    """How texts are chosen."""

    budget: int = setting(100, "how many texts to choose (default: %(default)s)")
    strategy: str = setting("margin", "margin, entropy, random or diverse (default: %(default)s; measured in "
                            "docs/labeling.md)", choices=STRATEGIES)
    balance: bool = setting(False, "deal the picks out across the model's predicted classes in turn")
    to: str = setting("table", "table (csv/tsv/jsonl by --out's extension), label-studio (tasks JSON with "
                      "pre-annotations, and a label config beside it) or doccano (JSONL)", choices=FORMATS)
    seed: int = setting(42, "random seed (default: %(default)s)")

    def check(self) -> SelectSettings:
        if self.budget < 1:
            raise UserError(f"--budget must be at least 1, got {self.budget}")
        if self.strategy not in STRATEGIES:
            raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.to not in FORMATS:
            raise UserError(f"--to must be one of {', '.join(FORMATS)}, got {self.to!r}")
        return self


@dataclass
class Pick:
    text: str
    score: float
    label: str
    prob: float


@dataclass
class Chosen:
    picks: list[Pick]
    pool: int
    duplicates: int
    already_labeled: int
    strategy: str
    classes: dict[str, int] = field(default_factory=dict)


def near_key(text: str) -> str:
    """The text with case, spaces, punctuation and digits set aside (near duplicates share it)."""
    norm = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[\W\d_]+", "", norm) or norm.strip()


def uncertainty(model: TextClassifier, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(margin, entropy) of each row: lower margin / higher entropy = less sure."""
    p = np.nan_to_num(np.asarray(probs, dtype=np.float64), nan=0.0)
    if model.task.multi:
        margin = np.abs(p - 0.5).min(axis=1)
        q = np.clip(p, 1e-12, 1 - 1e-12)
        entropy = -(q * np.log(q) + (1 - q) * np.log(1 - q)).mean(axis=1)
        return margin, entropy
    top = -np.sort(-p, axis=1)
    margin = top[:, 0] - (top[:, 1] if p.shape[1] > 1 else 0.0)
    entropy = -(np.clip(p, 1e-12, 1.0) * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)
    return margin, entropy


def cluster_ids(texts: list[str], k: int, seed: int) -> np.ndarray:
    """k-means clusters of the texts' character TF-IDF vectors (64 SVD dimensions)."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, max_features=50000).fit_transform(texts)
    dims = max(1, min(64, x.shape[1] - 1, len(texts) - 1))
    z = TruncatedSVD(dims, random_state=seed).fit_transform(x) if dims >= 2 else x.toarray()
    k = max(1, min(k, len(texts)))
    return MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=2048).fit_predict(z)


def choose(model: TextClassifier, pool: list[str], labeled: list[str], settings: SelectSettings) -> Chosen:
    """The texts of ``pool`` to label next (see the module docstring)."""
    settings.check()
    seen = {near_key(t) for t in labeled}
    texts, keys, dup, known = [], set(), 0, 0
    for text in pool:
        if not text or not text.strip():
            continue
        key = near_key(text)
        if key in seen:
            known += 1
            continue
        if key in keys:
            dup += 1
            continue
        keys.add(key)
        texts.append(text)
    if not texts:
        raise UserError("the pool has no text left to choose from (empty, or all already labeled)")
    outputs = model.score(texts)
    margin, entropy = uncertainty(model, outputs.probs)
    rng = np.random.default_rng(settings.seed)
    if settings.strategy == "random":
        order = rng.permutation(len(texts))
    elif settings.strategy == "entropy":
        order = np.argsort(-entropy, kind="stable")
    elif settings.strategy == "margin":
        order = np.argsort(margin, kind="stable")
    else:
        groups = cluster_ids(texts, settings.budget, settings.seed)
        by_margin = np.argsort(margin, kind="stable")
        firsts, rest, taken = [], [], set()
        for i in by_margin:
            if groups[i] not in taken:
                taken.add(groups[i])
                firsts.append(i)
            else:
                rest.append(i)
        order = np.array([*firsts, *rest])
    preds = model.predict(texts, top_k=1) if not model.task.multi else None
    decided = model.task.decide(outputs.probs, model.labels)

    def suggestion(i: int) -> tuple[str, float]:
        if preds is not None:
            return str(preds[i].label), float(preds[i].prob)
        chosen = [model.labels[j] for j in np.flatnonzero(decided[i])]
        return ",".join(chosen), float(np.nanmax(outputs.probs[i]))

    if settings.balance:
        queues: dict[str, list[int]] = {}
        for i in order:
            queues.setdefault(suggestion(int(i))[0], []).append(int(i))
        dealt: list[int] = []
        while len(dealt) < min(settings.budget, len(texts)):
            for q in queues.values():
                if q and len(dealt) < settings.budget:
                    dealt.append(q.pop(0))
        order = np.array(dealt)
    score = {"margin": margin, "diverse": margin, "entropy": entropy, "random": margin}[settings.strategy]
    picks = []
    for i in order[: settings.budget]:
        label, prob = suggestion(int(i))
        picks.append(Pick(texts[int(i)], round(float(score[int(i)]), 6), label, round(prob, 6)))
    return Chosen(picks, len(pool), dup, known, settings.strategy, dict(Counter(p.label for p in picks)))


# --------------------------------------------------------------------------- annotation tools


def label_config(labels: list[str], multi: bool) -> str:
    """A Label Studio labeling config: the text and one ``Choices`` control over the model's labels."""
    from xml.sax.saxutils import quoteattr

    choices = "".join(f"<Choice value={quoteattr(x)}/>" for x in labels)
    kind = "multiple" if multi else "single"
    return (f'<View>\n  <Text name="{TO_NAME}" value="$text"/>\n  <Choices name="{FROM_NAME}" toName="{TO_NAME}" '
            f'choice="{kind}" showInline="true">{choices}</Choices>\n</View>\n')


def label_studio_tasks(picks: list[Pick], model_version: str, multi: bool) -> list[dict]:
    """Label Studio tasks with the model's answer as a pre-annotation (``predictions``)."""
    tasks = []
    for p in picks:
        choices = [c for c in p.label.split(",") if c] if multi else [p.label]
        tasks.append({"data": {"text": p.text, "selection_score": p.score},
                      "predictions": [{"model_version": model_version, "score": p.prob,
                                       "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                                                   "value": {"choices": choices}}]}]})
    return tasks


def write_selection(sel: Chosen, out: Path, fmt: str, model: TextClassifier) -> list[Path]:
    """Write the picks as ``fmt``; return the files written."""
    multi = model.task.multi
    if fmt == "label-studio":
        version = f"{model.kind}:{model.path.name if model.path else 'model'}"
        write_json(out, label_studio_tasks(sel.picks, version, multi))
        config = out.with_name(out.stem + ".label_config.xml")
        write_text(config, label_config(list(model.labels), multi))
        return [out, config]
    if fmt == "doccano":
        lines = [json.dumps({"text": p.text, "label": [c for c in p.label.split(",") if c] if multi else [p.label],
                             "selection_score": p.score, "probability": p.prob}, ensure_ascii=False)
                 for p in sel.picks]
        write_text(out, "\n".join(lines) + "\n")
        return [out]
    import pandas as pd

    from ..fileio import atomic_open

    frame = pd.DataFrame([{"text": p.text, "score": p.score, "suggested_label": p.label, "probability": p.prob}
                          for p in sel.picks])
    suffix = out.suffix.lower()
    with atomic_open(out, "w", newline="") as fh:
        if suffix == ".jsonl":
            frame.to_json(fh, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_csv(fh, index=False, sep="\t" if suffix == ".tsv" else ",")
    return [out]


@dataclass
class Imported:
    rows: list[tuple[str, str]]
    skipped: int = 0
    conflicts: list[dict] = field(default_factory=list)


def import_labels(path: Path, source: str, label_sep: str = ",") -> Imported:
    """Labeled rows from a Label Studio JSON export or a doccano JSONL export: skipped or cancelled tasks left
    out and counted, tasks whose annotators disagree left out and listed (never silently resolved)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    if source == "label-studio":
        try:
            tasks = json.loads(text)
        except ValueError as exc:
            raise UserError(f"{path}: not a Label Studio JSON export ({exc}); export the project as JSON") from None
        if not isinstance(tasks, list) or not all(isinstance(t, dict) and "data" in t for t in tasks):
            raise UserError(f"{path}: not a Label Studio JSON export (a list of tasks with \"data\" and "
                            "\"annotations\"); export the project as JSON")
        items = [(i + 1, _ls_text(t), _ls_answers(t)) for i, t in enumerate(tasks)]
    elif source == "doccano":
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise UserError(f"{path}, line {n}: not JSON; doccano exports JSONL (one object per line)") from None
            if not isinstance(obj, dict) or "text" not in obj:
                raise UserError(f"{path}, line {n}: no \"text\"; not a doccano text-classification export")
            labels = obj.get("label", obj.get("labels", []))
            labels = labels if isinstance(labels, list) else [labels]
            items.append((n, str(obj["text"]), [[str(x) for x in labels]] if labels else []))
    else:
        raise UserError(f"--from must be label-studio or doccano, got {source!r}")
    out = Imported([])
    for where, value, answers in items:
        if value is None or not answers:
            out.skipped += 1
            continue
        distinct = {tuple(sorted(a)) for a in answers}
        if len(distinct) > 1:
            out.conflicts.append({"item": where, "text": value, "answers": [label_sep.join(a) for a in answers]})
            continue
        out.rows.append((value, label_sep.join(sorted(distinct.pop()))))
    return out


def _ls_text(task: dict) -> str | None:
    data = task.get("data") or {}
    value = data.get(TO_NAME) if isinstance(data, dict) else None
    if value is None and isinstance(data, dict):
        value = next((v for v in data.values() if isinstance(v, str)), None)
    return str(value) if value is not None else None


def _ls_answers(task: dict) -> list[list[str]]:
    """The choices of each annotation not cancelled (empty annotations count as skipped)."""
    answers = []
    for ann in task.get("annotations") or []:
        if not isinstance(ann, dict) or ann.get("was_cancelled"):
            continue
        choices: list[str] = []
        for r in ann.get("result") or []:
            value = r.get("value") if isinstance(r, dict) else None
            if isinstance(value, dict) and isinstance(value.get("choices"), list):
                choices += [str(c) for c in value["choices"]]
        if choices:
            answers.append(choices)
    return answers
