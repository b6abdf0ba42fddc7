"""Why did the model say that? A score per character toward the predicted (or a chosen) class.

* **BERT folders**: Integrated Gradients (Sundararajan et al. 2017) with Captum's
  ``LayerIntegratedGradients`` on the embedding layer (``model.bert.embeddings``: token +
  position + type embeddings and their LayerNorm). The baseline input keeps ``[CLS]`` and
  ``[SEP]`` and replaces every other token by ``[PAD]`` (or ``[MASK]``); the score of a token is
  the sum of its attribution over the hidden dimensions. Integrated Gradients is *complete*:
  the scores add up to ``logit_target(text) - logit_target(baseline)``; the gap left by the
  ``n_steps`` Riemann approximation is reported as the **completeness error**.
* **Baseline folders** (TF-IDF + LogisticRegression / LinearSVC / MultinomialNB): the
  linear model's contribution of each n-gram, its TF-IDF value times its weight for the
  class (``coef_``; for naive Bayes ``feature_log_prob_`` less its mean over the classes). The contributions plus the
  intercept are the class's decision score exactly; the completeness error is the
  floating-point gap.

Tokens (BERT) and n-grams (baselines) are mapped back to the characters they cover; a score
is shared equally among its characters (a 2-gram's contribution goes half to each character,
an n-gram that occurs twice gives half to each occurrence), so the character scores add up
to the same total as the token scores. Characters the model did not see (control
characters, text cut off at ``max_len``) score 0.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from ..models.base import TextClassifier
from ..settings import setting

if TYPE_CHECKING:
    from ..models.bert import BertTextClassifier
    from ..models.ensemble import EnsembleClassifier
    from ..models.tfidf import TfidfClassifier

log = logging.getLogger(__name__)

BASELINES = ("pad", "mask")


@dataclass(frozen=True)
class ExplainOptions:
    """Settings of :func:`explainer_for` (the CLI builds its flags from them)."""

    n_steps: int = setting(50, "BERT: Integrated Gradients steps (default: %(default)s)")
    """Integrated Gradients steps (BERT): more steps, smaller completeness error, slower."""
    baseline: str = setting("pad", "BERT: token that replaces the text in the IG baseline (default: %(default)s)",
                            choices=BASELINES)
    """BERT baseline token: ``pad`` ([PAD]) or ``mask`` ([MASK]) in place of every text token."""
    internal_batch_size: int = setting(25, cli=False)
    """Interpolated inputs run through the model at once (memory vs speed)."""


@dataclass
class Explanation:
    """One text's explanation (see the module docstring)."""

    text: str
    label: str
    prob: float
    target: str
    method: str
    tokens: list[str]
    spans: list[tuple[int, int]]
    token_scores: list[float]
    char_scores: list[float]
    completeness: dict
    details: dict = field(default_factory=dict)
    abstained: bool = False  # the model's answer, as predict gives it: abstains, why, the ood score
    reason: str | None = None
    ood_score: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["spans"] = [list(s) for s in self.spans]
        return out


# --------------------------------------------------------------------------- spreading scores


def spread_to_chars(n_chars: int, spans: Sequence[tuple[int, int]], scores: Sequence[float]) -> list[float]:
    """Share each span's score equally among its characters; sum over spans per character."""
    out = np.zeros(n_chars, dtype=np.float64)
    for (start, end), score in zip(spans, scores, strict=True):
        if end > start:
            out[start:end] += score / (end - start)
    return [float(v) for v in out]


def _completeness(total: float, difference: float) -> dict:
    """How far the scores' sum is from what they should add up to (4 significant digits kept)."""
    gap = abs(total - difference)
    return {"sum_of_scores": total, "target_difference": difference, "error": float(f"{gap:.4g}"),
            "relative_error": float(f"{gap / max(abs(difference), 1e-12):.4g}")}


class BertExplainer:
    """Integrated Gradients for a BERT model (plain Hugging Face forward, with gradients)."""

    method = "integrated_gradients"

    def __init__(self, model: BertTextClassifier, options: ExplainOptions = ExplainOptions()) -> None:
        network = getattr(model, "network", None)
        if network is None:  # an ONNX-backed model: the gradients need the torch weights
            from ..modeling.folder import load_model_dir

            network = load_model_dir(Path(str(model.path))).model
        self.model = network.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tokenizer = model.tokenizer
        self.labels = list(model.labels)
        self.max_len = int(model.max_len)
        self.long_text = model.long_text
        self.options = options
        self.path = model.path
        self.classifier = model

    def _forward(self, input_ids):
        import torch

        return self.model(input_ids, attention_mask=torch.ones_like(input_ids))

    def _kept(self, n: int) -> list[int]:
        """Positions of the text's tokens the model sees (as training truncated them)."""
        from ..text.long_text import truncate

        room = self.max_len - 2
        if n <= room:
            return list(range(n))
        strategy = self.long_text.truncation if self.long_text.truncation in ("head", "tail", "head+tail") else "head"
        return list(truncate(list(range(n)), room, strategy, self.long_text.head_tokens))

    def explain(self, text: str, target: str | None = None) -> Explanation:
        import torch
        from captum.attr import LayerIntegratedGradients

        tok = self.tokenizer
        all_ids = tok.token_ids(text)
        all_spans = tok.token_spans(text)
        kept = self._kept(len(all_ids))
        ids = [all_ids[i] for i in kept]
        spans = [all_spans[i] for i in kept]
        fill = tok.pad_id if self.options.baseline == "pad" else tok.mask_id
        x = torch.tensor([[tok.cls_id, *ids, tok.sep_id]])
        ref = torch.tensor([[tok.cls_id, *([fill] * len(ids)), tok.sep_id]])
        with torch.no_grad():
            logits = self._forward(torch.cat([x, ref]))
        decided = decision(self.classifier, text)
        pred = self.labels.index(decided.label)
        t = pred if target is None else _target_index(target, self.labels)
        lig = LayerIntegratedGradients(self._forward, self.model.bert.embeddings)
        attr = lig.attribute(x, baselines=ref, target=t, n_steps=self.options.n_steps,
                             internal_batch_size=self.options.internal_batch_size)
        token_scores = attr.sum(-1)[0].detach().double().numpy()
        difference = float(logits[0, t] - logits[1, t])
        scores = [float(s) for s in token_scores[1:-1]]
        return Explanation(
            abstained=decided.abstained, reason=decided.reason, ood_score=decided.ood_score,
            text=text, label=decided.label, prob=float(decided.prob), target=self.labels[t], method=self.method,
            tokens=_shown_tokens(tok, ids, spans, text), spans=spans, token_scores=scores,
            char_scores=spread_to_chars(len(text), spans, scores),
            completeness=_completeness(float(token_scores.sum()), difference),
            details={"n_steps": self.options.n_steps, "baseline": f"[{self.options.baseline.upper()}]",
                     "special_tokens_score": round(float(token_scores[0] + token_scores[-1]), 6),
                     "tokens_seen": len(ids), "tokens_in_text": len(all_ids)},
        )


def decision(model: TextClassifier, text: str) -> Any:
    """The model's answer for ``text`` as ``predict`` gives it (calibrated, decided for the metric)."""
    (pred,) = model.predict([text])
    if pred.label is None:
        raise UserError("the text to explain is empty")
    return pred


def _shown_tokens(tok, ids: list[int], spans: list[tuple[int, int]], text: str) -> list[str]:
    """Vocab tokens, except that ``[UNK]`` shows the text it stands for."""
    return [text[s:e] if i == tok.unk_id else t
            for i, t, (s, e) in zip(ids, tok.convert_ids_to_tokens(ids), spans, strict=True)]


def _target_index(target: str, labels: Sequence[str]) -> int:
    if target in labels:
        return list(labels).index(target)
    raise UserError(f"--target {target!r} is not a class of this model (its classes: {', '.join(labels)})")


# --------------------------------------------------------------------------- linear baselines


def _preprocessed(vectorizer, text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` as the vectorizer's preprocessor and char analyzer see it, with each
    character's span in the original text (lower-casing may change a character's length)."""
    chars: list[str] = []
    origin: list[tuple[int, int]] = []
    for i, ch in enumerate(text):
        out = ch.lower() if vectorizer.lowercase else ch
        chars.append(out)
        origin.extend([(i, i + 1)] * len(out))
    return "".join(chars), origin


def _collapse_spaces(text: str, origin: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """scikit-learn's char analyzer replaces runs of 2+ whitespace by one space."""
    out, spans, pos = [], [], 0
    for m in re.finditer(r"\s\s+", text):
        out.append(text[pos:m.start()])
        spans.extend(origin[pos:m.start()])
        out.append(" ")
        spans.append((origin[m.start()][0], origin[m.end() - 1][1]))
        pos = m.end()
    out.append(text[pos:])
    spans.extend(origin[pos:])
    return "".join(out), spans


def feature_spans(vectorizer, text: str) -> dict[int, list[tuple[int, int]]]:
    """Each vocabulary feature found in ``text`` -> the character spans of its occurrences."""
    vocab = vectorizer.vocabulary_
    lo, hi = vectorizer.ngram_range
    norm, origin = _preprocessed(vectorizer, text)
    if vectorizer.analyzer == "char":
        norm, origin = _collapse_spaces(norm, origin)
        pieces = [(c, k, k) for k, c in enumerate(norm)]
        join = "".join
    elif vectorizer.analyzer == "word":
        tokenize = vectorizer.build_tokenizer()
        pieces, pos = [], 0
        for token in tokenize(norm):
            start = norm.find(token, pos)
            if start < 0 or not token:
                continue  # a tokenizer that rewrites its tokens: the feature stays unmapped
            pieces.append((token, start, start + len(token) - 1))
            pos = start + len(token)
        join = " ".join
    else:
        raise UserError(f"cannot map features of analyzer {vectorizer.analyzer!r} back to characters")
    found: dict[int, list[tuple[int, int]]] = {}
    for n in range(lo, hi + 1):
        for k in range(len(pieces) - n + 1):
            group = pieces[k:k + n]
            j = vocab.get(join(p[0] for p in group))
            if j is not None:
                found.setdefault(j, []).append((origin[group[0][1]][0], origin[group[-1][2]][1]))
    return found


class LinearExplainer:
    """n-gram contributions of a TF-IDF + linear baseline."""

    method = "linear_contributions"

    def __init__(self, model: TfidfClassifier) -> None:
        estimator, meta = model.estimator, model.meta
        path = model.path or model.kind
        steps = getattr(estimator, "named_steps", {})
        if "tfidf" not in steps or "clf" not in steps or model.task.multi:
            raise UserError(f"{path}: the {meta.get('name', 'baseline')} model has no features to explain "
                            "(explain works for single-label TF-IDF baselines and BERT folders)")
        self.estimator, self.meta = estimator, meta
        self.vectorizer, self.clf = steps["tfidf"], steps["clf"]
        self.labels = list(meta["labels"])
        self.classes = [int(c) for c in self.clf.classes_]
        self.path = model.path
        self.classifier = model

    def _weights(self, t: int) -> tuple[np.ndarray, float]:
        """Weight vector and intercept of class id ``t``'s decision score.

        Naive Bayes: its log probabilities are all negative, so each is taken relative to the
        mean over the classes (what separates the classes); the score is then the joint log
        likelihood minus its mean over the classes.
        """
        clf = self.clf
        if t not in self.classes:
            raise UserError(f"class {self.labels[t]!r} was not in this baseline's training data")
        row = self.classes.index(t)
        if hasattr(clf, "feature_log_prob_"):
            logp, prior = np.asarray(clf.feature_log_prob_), np.asarray(clf.class_log_prior_)
            return logp[row] - logp.mean(axis=0), float(prior[row] - prior.mean())
        coef, intercept = np.asarray(clf.coef_), np.atleast_1d(clf.intercept_)
        if coef.shape[0] == 1:  # binary: the score is for classes_[1]; classes_[0] gets its negative
            sign = 1.0 if row == 1 else -1.0
            return sign * coef[0], sign * float(intercept[0])
        return coef[row], float(intercept[row])

    def _decision(self, x, t: int) -> float:
        clf, row = self.clf, self.classes.index(t)
        if hasattr(clf, "feature_log_prob_"):
            jll = clf.predict_joint_log_proba(x)[0]
            return float(jll[row] - jll.mean())
        scores = np.atleast_1d(np.asarray(clf.decision_function(x))[0])
        if scores.shape[0] == 1:
            return float(scores[0] if row == 1 else -scores[0])
        return float(scores[row])

    def explain(self, text: str, target: str | None = None) -> Explanation:

        decided = decision(self.classifier, text)
        pred = self.labels.index(decided.label)
        t = pred if target is None else _target_index(target, self.labels)
        x = self.vectorizer.transform([text])
        weights, intercept = self._weights(t)
        contrib = {int(j): float(v * weights[j]) for j, v in zip(x.indices, x.data, strict=True)}
        found = feature_spans(self.vectorizer, text)
        names = self.vectorizer.get_feature_names_out()
        tokens, spans, scores = [], [], []
        for j, value in sorted(contrib.items(), key=lambda kv: min(found.get(kv[0], [(len(text), 0)]))):
            where = found.get(j, [])
            for span in where:
                tokens.append(str(names[j]))
                spans.append(span)
                scores.append(value / len(where))
        unmapped = sum(v for j, v in contrib.items() if j not in found)
        total = sum(contrib.values())
        return Explanation(
            abstained=decided.abstained, reason=decided.reason, ood_score=decided.ood_score,
            text=text, label=decided.label, prob=float(decided.prob), target=self.labels[t], method=self.method,
            tokens=tokens, spans=spans, token_scores=scores, char_scores=spread_to_chars(len(text), spans, scores),
            completeness=_completeness(total, self._decision(x, t) - intercept),
            details={"intercept": round(intercept, 6), "features": len(contrib), "unmapped_score": round(unmapped, 6),
                     "model": self.meta.get("name")},
        )


# --------------------------------------------------------------------------- loading, running


def check_options(options: ExplainOptions) -> ExplainOptions:
    if options.baseline not in BASELINES:
        raise UserError(f"--baseline must be one of {', '.join(BASELINES)}, got {options.baseline!r}")
    if options.n_steps < 2:
        raise UserError(f"--n-steps must be at least 2, got {options.n_steps}")
    return options


def explainer_for(model: TextClassifier, options: ExplainOptions = ExplainOptions()) -> Any:
    """A :class:`BertExplainer`, :class:`LinearExplainer` or :class:`EnsembleExplainer` for a loaded model."""
    from ..models.bert import BertTextClassifier
    from ..models.ensemble import EnsembleClassifier
    from ..models.tfidf import TfidfClassifier

    check_options(options)
    if isinstance(model, BertTextClassifier):
        return BertExplainer(model, options)
    if isinstance(model, TfidfClassifier):
        return LinearExplainer(model)
    if isinstance(model, EnsembleClassifier):
        return EnsembleExplainer(model, options)
    return OcclusionExplainer(model)


class OcclusionExplainer:
    """Any other kind (fasttext, textcnn): a character's score is how much the log-probability of the target
    class drops when that character is left out (one batch of ``len(text) + 1`` predictions). The scores need
    not add up to anything; completeness compares their sum with the target's log-probability above chance."""

    method = "occlusion"

    def __init__(self, model: TextClassifier) -> None:
        self.classifier, self.path, self.labels = model, model.path, list(model.labels)

    def explain(self, text: str, target: str | None = None) -> Explanation:
        decided = decision(self.classifier, text)
        t = _target_index(target, self.labels) if target else self.labels.index(decided.label)
        variants = [text] + [text[:i] + text[i + 1:] for i in range(len(text))]
        probs = self.classifier.predict_proba(variants)
        logp = np.log(np.clip(np.nan_to_num(probs[:, t], nan=1.0 / len(self.labels)), 1e-12, 1.0))
        scores = [float(logp[0] - v) for v in logp[1:]]
        return Explanation(
            abstained=decided.abstained, reason=decided.reason, ood_score=decided.ood_score,
            text=text, label=decided.label, prob=float(decided.prob), target=self.labels[t], method=self.method,
            tokens=list(text), spans=[(i, i + 1) for i in range(len(text))], token_scores=scores, char_scores=scores,
            completeness=_completeness(sum(scores), float(logp[0] - np.log(1.0 / len(self.labels)))),
            details={"model": self.classifier.kind},
        )


class EnsembleExplainer:
    """An ensemble folder: each member's character scores toward the ensemble's target class, summed
    with the factors the ensemble gives the members' log-probabilities (weight / temperature).

    For ``combine: logprob`` the ensemble's score is exactly that weighted sum of the members'
    scores, so its completeness error is the same weighted sum of theirs; for ``combine: prob``
    the weighting is the first-order view of the mixture (documented in docs/analysis.md).
    """

    method = "ensemble_weighted"

    def __init__(self, model: EnsembleClassifier, options: ExplainOptions = ExplainOptions()) -> None:
        self.path = model.path
        self.labels = list(model.labels)
        members = model.members
        self.members = [explainer_for(m, options) for m in members]
        self.factors = [w / t for w, t in zip(model.weights, model.temperatures, strict=True)]
        self.predictor = model

    def explain(self, text: str, target: str | None = None) -> Explanation:
        decided = decision(self.predictor, text)
        label = str(decided.label)
        target = label if target is None else self.labels[_target_index(target, self.labels)]
        parts = [m.explain(text, target) for m in self.members]
        scores = np.zeros(len(text))
        for factor, part in zip(self.factors, parts, strict=True):
            scores += factor * np.asarray(part.char_scores, dtype=np.float64)
        chars = [float(v) for v in scores]
        error = sum(abs(f) * float(p.completeness.get("error", 0.0)) for f, p in zip(self.factors, parts, strict=True))
        return Explanation(
            abstained=decided.abstained, reason=decided.reason, ood_score=decided.ood_score,
            text=text, label=label, prob=float(decided.prob), target=target, method=self.method,
            tokens=list(text), spans=[(i, i + 1) for i in range(len(text))], token_scores=chars, char_scores=chars,
            completeness={"error": error, "members": [p.completeness for p in parts]},
            details={"members": [{"path": str(m.path), "method": p.method, "factor": f}
                                 for m, p, f in zip(self.members, parts, self.factors, strict=True)]},
        )


def explain_texts(
    explainer, texts: Sequence[str], target: str | None = None, progress: bool = False
) -> list[Explanation]:
    """Explain each text; ``details["seconds"]`` holds the time each took."""
    from ..bars import progress_bar

    out = []
    for text in progress_bar(texts, enabled=progress and len(texts) >= 2, desc="explain", unit="text"):
        t0 = time.perf_counter()
        expl = explainer.explain(text, target)
        expl.details["seconds"] = round(time.perf_counter() - t0, 4)
        out.append(expl)
    return out


# --------------------------------------------------------------------------- rendering

CSV_COLUMNS = ["text_index", "label", "target", "token", "start", "end", "score"]


def csv_rows(explanations: Sequence[Explanation]) -> list[dict]:
    """One row per token (BERT) or n-gram occurrence (baseline)."""
    return [
        {"text_index": i, "label": e.label, "target": e.target, "token": tok, "start": s, "end": end,
         "score": round(score, 6)}
        for i, e in enumerate(explanations)
        for tok, (s, end), score in zip(e.tokens, e.spans, e.token_scores, strict=True)
    ]


def _scale(scores: Sequence[float]) -> float:
    return max((abs(s) for s in scores), default=0.0) or 1.0


def highlight_html(expl: Explanation) -> str:
    """The text as HTML spans, green for characters pushing toward the target class, red against
    it, the stronger the darker (scaled to the text's largest score); the score in a title."""
    top = _scale(expl.char_scores)
    parts = []
    for ch, s in zip(expl.text, expl.char_scores, strict=True):
        alpha = min(abs(s) / top, 1.0)
        colour = f"rgba(0,150,60,{alpha:.2f})" if s > 0 else f"rgba(210,40,40,{alpha:.2f})"
        parts.append(f'<span class="ch" style="background:{colour}" title="{s:+.4f}">{html.escape(ch)}</span>')
    return "".join(parts)


def explanations_html(explanations: Sequence[Explanation], title: str = "explanations") -> str:
    """A self-contained HTML page (inline CSS, no scripts, no network)."""
    rows = []
    for i, e in enumerate(explanations):
        c = e.completeness
        rows.append(
            f'<section class="expl" id="text-{i}"><p class="meta">#{i}: predicted <b>{html.escape(e.label)}</b> '
            f"({e.prob:.3f}); scores toward <b>{html.escape(e.target)}</b> by {e.method.replace('_', ' ')}; "
            f"completeness error {c['error']:.4g} of {c['target_difference']:.4g}</p>"
            f'<p class="text">{highlight_html(e)}</p></section>'
        )
    return (
        "<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>"
        f"{html.escape(title)}</title><style>{HIGHLIGHT_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        '<p class="legend"><span class="key" style="background:rgba(0,150,60,.8)">green</span> pushes toward the '
        'class, <span class="key" style="background:rgba(210,40,40,.8)">red</span> against it.</p>'
        + "\n".join(rows) + "</body></html>\n"
    )


HIGHLIGHT_CSS = (
    "body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;margin:2em;color:#222}"
    ".text{font-size:1.3em;line-height:1.8}.ch,.key{padding:0 1px;border-radius:2px}"
    ".meta{color:#555;font-size:.9em;margin-bottom:.2em}.expl{border-bottom:1px solid #ddd;padding:.5em 0}"
)


def ansi_text(expl: Explanation) -> str:
    """The text with 256-colour ANSI backgrounds (green toward, red against), for a terminal."""
    top = _scale(expl.char_scores)
    greens, reds = (22, 28, 34, 40, 46), (52, 88, 124, 160, 196)
    out = []
    for ch, s in zip(expl.text, expl.char_scores, strict=True):
        level = min(int(abs(s) / top * 5), 4)
        if abs(s) / top < 0.1:
            out.append(ch)
        else:
            out.append(f"\x1b[48;5;{(greens if s > 0 else reds)[level]}m\x1b[97m{ch}\x1b[0m")
    return "".join(out)


def plain_text(expl: Explanation, top: int = 5) -> str:
    """The strongest tokens toward / against the target, for a non-terminal stdout."""
    pairs = sorted(((t if t.strip() else repr(t), s) for t, s in zip(expl.tokens, expl.token_scores, strict=True)),
                   key=lambda p: -p[1])
    pro = ", ".join(f"{t}({s:+.3f})" for t, s in pairs[:top] if s > 0) or "-"
    con = ", ".join(f"{t}({s:+.3f})" for t, s in reversed(pairs[-top:]) if s < 0) or "-"
    return f"  toward: {pro}\n  against: {con}"
