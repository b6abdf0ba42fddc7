"""Out-of-domain scores and the abstention a model folder stores (``ood.safetensors`` + ``ood.json``).

A text's out-of-domain score combines, each normalised on dev (``(x - median) / (q95 - median)``,
so that 0 is a typical dev text and 1 dev's 95th percentile):

* ``distance`` (the model kind's own view, read from the features it computes while predicting, no
  second pass): BERT's [CLS] vector's smallest **Mahalanobis** distance to the class means, one
  covariance shared by the classes (Ledoit-Wolf shrinkage; Lee et al. 2018, Podolskiy et al. 2021;
  label sets: the distance to the training mean); for TF-IDF kinds ``1 -`` the largest cosine
  between the text's TF-IDF vector and the class **centroids** (no known n-gram: 1); none for the
  majority floor;
* ``language``: the text's mean per-character surprisal under a character bigram model of the
  training texts (Witten-Bell interpolation with the unigrams, add-one for unseen characters);
* ``confidence``: ``1 -`` the largest calibrated class probability;
* ``composition``: how rare the text's make-up is among the training texts: for each script (Han,
  Latin letters, digits, spaces and punctuation, anything else) the share of the text's characters
  in it, binned in tenths; ``-log`` of the training texts' (smoothed) frequency of that bin, the
  rarest script counting. It is a gate, not a score: a text whose make-up fewer than 1 in 1,000
  training texts share (:data:`COMPOSITION_LIMIT`; an all-English, all-digit or emoji text to a
  Chinese classifier) gets the score :data:`GATED`.

``score = mean(distance, language, confidence)`` (the gate aside), normalised on dev once more. An
ensemble averages its members' scores with its own confidence (``mean(members, confidence)``; the
members' gates carry over). The bench (``bench/open_set.py``, docs/abstain.md) chose this over each
component alone and over taking the largest.

:class:`Abstainer` holds the detectors, the normalisations, the dev evidence and the rule
(:mod:`cls_app.tasks.abstain`).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_files, write_json
from ..tasks.abstain import AbstainSettings, DevEvidence, RejectRule, fit_rule
from .folders import ABSTAIN_FILES

log = logging.getLogger(__name__)

OOD_FILE, OOD_META = ABSTAIN_FILES
OOD_FORMAT = 1
METHODS = ("mahalanobis", "centroid")
COMPONENTS = ("distance", "language", "confidence", "composition", "members", "score")
SCRIPT_BINS = 10
COMPOSITION_LIMIT = math.log(1000.0)
"""A text whose rarest script-share bin holds fewer than 1 in 1,000 training texts is out of domain."""
GATED = 100.0
"""The combined score of such a text (before the final normalisation): far above any dev threshold."""
START = 0x02  # the character before a text's first, for the bigram model


def usable_scale(scale: float) -> float:
    """``scale``, or 1 when it is too small to divide by."""
    return scale if scale > 1e-12 else 1.0


def robust_norm(values: np.ndarray) -> tuple[float, float]:
    """(median, q95 - median) of the finite values; (0, 1) when there are none, scale 1 when they do not spread."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return 0.0, 1.0
    center = float(np.median(v))
    return center, usable_scale(float(np.quantile(v, 0.95) - center))


@dataclass
class Detector:
    """A model kind's fitted distance (``mahalanobis`` or ``centroid``; see the module docstring)."""

    method: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def raw(self, features: Any) -> np.ndarray:
        """The distance of each row of ``features``."""
        if self.method == "mahalanobis":
            # whitened once (precision = L L^T): ||x L - mu L||^2 for every class mean, by matrix products
            z = np.asarray(features, dtype=np.float64) @ self.arrays["whiten"]
            mz = self.arrays["means"] @ self.arrays["whiten"]
            d2 = (z * z).sum(axis=1)[:, None] - 2.0 * z @ mz.T + (mz * mz).sum(axis=1)[None, :]
            return np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        if self.method == "centroid":
            from scipy import sparse

            x = sparse.csr_matrix(features, dtype=np.float64)
            norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
            sims = np.asarray(x @ self.arrays["centroids"].T)
            best = sims.max(axis=1) / np.where(norms > 0, norms, 1.0)
            return 1.0 - np.where(norms > 0, best, 0.0)
        raise UserError(f"unknown out-of-domain method {self.method!r}")

    @classmethod
    def mahalanobis(cls, features: np.ndarray, groups: np.ndarray | None) -> Detector:
        """Class means (one mean when ``groups`` is None) and the Cholesky factor of a shared shrunk precision."""
        from sklearn.covariance import LedoitWolf

        x = np.asarray(features, dtype=np.float64)
        if groups is None:
            means = x.mean(axis=0, keepdims=True)
            centered = x - means[0]
        else:
            present = np.unique(groups)
            means = np.stack([x[groups == c].mean(axis=0) for c in present])
            centered = x - means[np.searchsorted(present, groups)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a constant feature: judged below
            precision = LedoitWolf(assume_centered=True).fit(centered).precision_
        try:
            if not np.isfinite(precision).all():
                raise np.linalg.LinAlgError("the shrunk covariance is singular")
            whiten = np.linalg.cholesky((precision + precision.T) / 2.0)
        except np.linalg.LinAlgError:
            whiten = floored_whitening(centered)
            log.info("out-of-domain distance: the features' covariance is singular (duplicated or constant "
                     "rows); its eigenvalues are floored")
        return cls("mahalanobis", {"means": means, "whiten": whiten})

    @classmethod
    def centroids(cls, features: Any, y: np.ndarray) -> Detector:
        """L2-normalised class centroids of sparse TF-IDF rows (label sets: ``y`` a 0/1 matrix)."""
        from scipy import sparse

        x = sparse.csr_matrix(features, dtype=np.float64)
        member = np.asarray(y)
        if member.ndim == 1:
            member = np.eye(int(member.max()) + 1)[member]
        dense = np.asarray((sparse.csr_matrix(member.T.astype(np.float64)) @ x).todense())
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return cls("centroid", {"centroids": (dense / np.where(norms > 0, norms, 1.0)).astype(np.float32)})


EIGEN_FLOOR = 1e-3
"""The fallback whitening floors the covariance's eigenvalues at this share of their mean."""


def floored_whitening(centered: np.ndarray) -> np.ndarray:
    """``W`` with ``||x W||^2`` the Mahalanobis distance under the rows' covariance, its eigenvalues floored at
    :data:`EIGEN_FLOOR` of their mean (the identity when the rows do not vary at all): what a covariance of
    few, duplicated or constant rows needs, where the Cholesky factor of the precision does not exist."""
    d = centered.shape[1]
    cov = centered.T @ centered / max(len(centered), 1)
    cov = (cov + cov.T) / 2.0
    values, vectors = np.linalg.eigh(cov)
    mean = float(np.clip(values, 0.0, None).mean()) if d else 0.0
    if not np.isfinite(mean) or mean <= 1e-300:
        return np.eye(d)
    return vectors / np.sqrt(np.maximum(values, EIGEN_FLOOR * mean))[None, :]


def script_of(ch: str) -> int:
    """0 Han, 1 Latin letter, 2 digit, 3 space or punctuation, 4 anything else."""
    o = ord(ch)
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FA1F:
        return 0
    if ch.isascii():
        if ch.isalpha():
            return 1
        if ch.isdigit():
            return 2
        return 3
    if ch.isdigit():
        return 2
    if ch.isspace() or not ch.isalnum() and o < 0x3100 and not 0x2600 <= o <= 0x27BF:
        return 3  # general and CJK punctuation (not symbols, pictographs, letters of other scripts)
    if 0xFF01 <= o <= 0xFF5E:  # full-width ASCII
        return 1 if ch.isalpha() else 3
    return 4


def composition_bins(text: str) -> list[int]:
    """Per script, the bin (0 .. SCRIPT_BINS - 1) of the share of ``text``'s characters in it."""
    counts = [0] * 5
    for ch in text:
        counts[script_of(ch)] += 1
    n = max(1, len(text))
    return [min(SCRIPT_BINS - 1, int(c * SCRIPT_BINS / n)) for c in counts]


def text_codes(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All the texts' code points in one int64 array, the text each belongs to, and each text's first index."""
    lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
    starts = np.zeros(len(texts), dtype=np.int64)
    if len(texts):
        starts[1:] = np.cumsum(lengths)[:-1]
    # surrogatepass: a lone surrogate (possible in a Python str) is one code point, as ord() sees it
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    return codes, np.repeat(np.arange(len(texts)), lengths), starts


def lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray, missing: int = 0) -> np.ndarray:
    """``values`` at ``wanted`` in the sorted ``keys`` (``missing`` where absent)."""
    if not len(keys):
        return np.full(len(wanted), missing, dtype=values.dtype)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], missing)


_SCRIPTS: dict[int, int] = {}  # code point -> script_of, filled as characters are met


def composition_bins_of(texts: list[str]) -> np.ndarray:
    """:func:`composition_bins` of every text, shape ``(len(texts), 5)``."""
    codes, owner, _ = text_codes(texts)
    unique, inverse = np.unique(codes, return_inverse=True)
    scripts = np.fromiter((_SCRIPTS.get(c) if c in _SCRIPTS else _SCRIPTS.setdefault(c, script_of(chr(c)))
                           for c in unique.tolist()), np.int64, len(unique))
    counts = np.bincount(owner * 5 + scripts[inverse], minlength=len(texts) * 5).reshape(len(texts), 5)
    n = np.maximum(1, counts.sum(axis=1, keepdims=True))
    return np.minimum(SCRIPT_BINS - 1, counts * SCRIPT_BINS // n)


@dataclass(frozen=True)
class DensityTables:
    """A :class:`TextDensity`'s counts as sorted key / value arrays (binary search instead of dict lookups)."""

    uni_keys: np.ndarray
    uni_counts: np.ndarray
    bi_keys: np.ndarray
    bi_counts: np.ndarray
    hist_keys: np.ndarray
    hist_counts: np.ndarray  # bigram count starting from the key
    hist_distinct: np.ndarray  # distinct followers of the key

    @classmethod
    def of(cls, d: TextDensity) -> DensityTables:
        def table(mapping: dict[int, Any], width: int) -> tuple[np.ndarray, ...]:
            keys = np.fromiter(mapping, np.int64, len(mapping))
            vals = np.array(list(mapping.values()), dtype=np.int64).reshape(len(mapping), width)
            order = np.argsort(keys)
            return (keys[order], *(vals[order, i] for i in range(width)))

        uk, uc = table(d.unigrams, 1)
        bk, bc = table(d.bigrams, 1)
        hk, hc, hd = table(d.history, 2)
        return cls(uk, uc, bk, bc, hk, hc, hd)


_FITTED: list[tuple[list[str], Any]] = []  # the last training texts fitted (that list object) and their density


@dataclass
class TextDensity:
    """How ordinary a text's characters are for the training texts (kind-agnostic: ``language`` and
    ``composition`` of the module docstring)."""

    unigrams: dict[int, int]
    bigrams: dict[int, int]  # (a << 21) | b -> count
    history: dict[int, tuple[int, int]]  # a -> (bigram count from a, distinct followers)
    script_counts: np.ndarray  # (5, SCRIPT_BINS) training texts per script share bin
    total: int  # characters counted
    # the last texts scored and their (language, composition): an ensemble's members share one density and
    # score the same texts, so they are scored once
    last: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    lookup: DensityTables | None = field(default=None, repr=False, compare=False)  # see :meth:`tables`

    @classmethod
    def of(cls, texts: list[str]) -> TextDensity:
        """:meth:`fit` on a list of training texts, once per list object (every model of a training run
        fits the same density; the last list and its density are kept)."""
        if _FITTED and _FITTED[0][0] is texts:
            return _FITTED[0][1]
        density = cls.fit(list(texts))
        _FITTED[:] = [(texts, density)]
        return density

    def signature(self) -> tuple[int, int, int]:
        return self.total, len(self.unigrams), len(self.bigrams)

    def both(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(language, composition) of ``texts``, reusing the last call's when the texts are the same."""
        key = tuple(texts)
        if self.last is not None and self.last[0] == key:
            return self.last[1], self.last[2]
        language, composition = self.language(texts), self.composition(texts)
        self.last = (key, language, composition)
        return language, composition

    @classmethod
    def fit(cls, texts: list[str]) -> TextDensity:
        uni: Counter[int] = Counter()
        bi: Counter[int] = Counter()
        scripts = np.zeros((5, SCRIPT_BINS), dtype=np.int64)
        for text in texts:
            codes = [ord(c) for c in text]
            uni.update(codes)
            bi.update((a << 21) | b for a, b in zip([START, *codes], codes, strict=False))
        if texts:
            np.add.at(scripts, (np.arange(5)[None, :], composition_bins_of(texts)), 1)
        return cls(dict(uni), dict(bi), cls._histories(bi), scripts, int(sum(uni.values())))

    @staticmethod
    def _histories(bi: dict[int, int]) -> dict[int, tuple[int, int]]:
        hist: dict[int, list[int]] = {}
        for key, count in bi.items():
            h = hist.setdefault(key >> 21, [0, 0])
            h[0] += count
            h[1] += 1
        return {k: (v[0], v[1]) for k, v in hist.items()}

    def tables(self) -> DensityTables:
        """The counts as sorted arrays (built on first use) for :meth:`language`."""
        if self.lookup is None:
            self.lookup = DensityTables.of(self)
        return self.lookup

    def language(self, texts: list[str]) -> np.ndarray:
        """Mean per-character surprisal (nats) of each text (one vectorised pass over all the characters)."""
        codes, owner, starts = text_codes(texts)
        out = np.zeros(len(texts))
        if not len(codes):
            return out
        t = self.tables()
        prev = np.empty_like(codes)
        prev[0] = START
        prev[1:] = codes[:-1]
        prev[starts[starts < len(codes)]] = START  # every text's first character follows START
        p = (lookup(t.uni_keys, t.uni_counts, codes) + 1) / (self.total + len(self.unigrams) + 1)
        seen = lookup(t.hist_keys, t.hist_counts, prev)
        distinct = lookup(t.hist_keys, t.hist_distinct, prev)
        pair = lookup(t.bi_keys, t.bi_counts, (prev << 21) | codes)
        has = seen > 0
        lam = np.divide(seen, seen + distinct, out=np.zeros(len(codes)), where=has)
        p = np.where(has, np.divide(lam * pair, seen, out=np.zeros(len(codes)), where=has) + (1.0 - lam) * p, p)
        nll = np.bincount(owner, weights=-np.log(p), minlength=len(texts))
        lengths = np.diff(np.append(starts, len(codes)))
        return nll / np.maximum(1, lengths)

    def composition(self, texts: list[str]) -> np.ndarray:
        """``-log`` of the training frequency of the text's rarest script-share bin."""
        counts = self.script_counts
        rates = -np.log((counts + 0.5) / (counts.sum(axis=1, keepdims=True) + 0.5 * SCRIPT_BINS))
        bins = composition_bins_of(texts)
        return rates[np.arange(5)[None, :], bins].max(axis=1) if len(texts) else np.zeros(0)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"uni_keys": np.fromiter(self.unigrams, np.int64, len(self.unigrams)),
                "uni_counts": np.fromiter(self.unigrams.values(), np.int64, len(self.unigrams)),
                "bi_keys": np.fromiter(self.bigrams, np.int64, len(self.bigrams)),
                "bi_counts": np.fromiter(self.bigrams.values(), np.int64, len(self.bigrams)),
                "script_counts": self.script_counts.astype(np.int64)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> TextDensity:
        uni = dict(zip(a["uni_keys"].tolist(), a["uni_counts"].tolist(), strict=True))
        bi = dict(zip(a["bi_keys"].tolist(), a["bi_counts"].tolist(), strict=True))
        return cls(uni, bi, cls._histories(bi), np.asarray(a["script_counts"]), int(sum(uni.values())))


@dataclass
class OodScorer:
    """The fitted parts of a model's out-of-domain score and their dev normalisations."""

    detector: Detector | None = None
    density: TextDensity | None = None
    norms: dict[str, tuple[float, float]] = field(default_factory=dict)
    members: bool = False  # an ensemble: ``members`` (their scores) instead of distance / language

    def parts(self, texts: list[str] | None, probs: np.ndarray, features: Any = None,
              member_scores: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The raw components of each row (NaN where a part does not apply)."""
        n = len(probs)
        nan = np.full(n, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (empty texts)
            out = {"confidence": 1.0 - np.nanmax(np.asarray(probs, dtype=np.float64), axis=1) if n else nan}
            if self.members:
                out["members"] = np.nanmean(member_scores, axis=1) if member_scores is not None else nan
                return out
        out["distance"] = self.detector.raw(features) if self.detector is not None and features is not None else nan
        if self.density is not None and texts is not None:
            out["language"], out["composition"] = self.density.both(texts)
        return out

    def z(self, name: str, values: np.ndarray) -> np.ndarray:
        center, scale = self.norms.get(name, (0.0, 1.0))
        return (np.asarray(values, dtype=np.float64) - center) / scale

    def combine(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """The combined score before its own normalisation (see the module docstring)."""
        keys = ("members", "confidence") if self.members else ("distance", "language", "confidence")
        core = [self.z(k, parts[k]) for k in keys if k in parts and k in self.norms]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            score = np.nanmean(np.vstack(core), axis=0)
        if "composition" in parts:
            score = np.where(np.asarray(parts["composition"]) > COMPOSITION_LIMIT, GATED, score)
        return score

    def score(self, texts: list[str] | None, probs: np.ndarray, features: Any = None,
              member_scores: np.ndarray | None = None) -> np.ndarray:
        """The normalised out-of-domain score of each row."""
        return self.z("score", self.combine(self.parts(texts, probs, features, member_scores)))

    def fit_norms(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """Normalise every component on the dev rows' ``parts``; return dev's normalised scores."""
        self.norms = {k: robust_norm(v) for k, v in parts.items() if np.isfinite(v).any() and k != "composition"}
        combined = self.combine(parts)
        self.norms["score"] = robust_norm(combined)
        return self.z("score", combined)

    def arrays(self) -> dict[str, np.ndarray]:
        parts = self.detector.arrays if self.detector else {}
        out = {f"detector.{k}": np.ascontiguousarray(v) for k, v in parts.items()}
        if self.density is not None:
            out.update({f"density.{k}": v for k, v in self.density.arrays().items()})
        return out

    def describe(self) -> dict:
        return {"method": self.detector.method if self.detector else ("members" if self.members else None),
                # exact floats: a scale rounded to 6 places could become 0 (every score then inf or NaN)
                "density": self.density is not None, "norms": {k: [v[0], v[1]] for k, v in self.norms.items()}}


@dataclass
class Abstainer:
    """What a model folder stores about abstaining: the scorer, the dev evidence and the rule."""

    scorer: OodScorer
    evidence: DevEvidence
    rule: RejectRule
    label_sets: bool = False

    def with_settings(self, settings: AbstainSettings | None, n_classes: int) -> Abstainer:
        """This abstainer with the rule ``settings`` ask for (refitted on the stored dev evidence)."""
        if settings is None or not settings.given:
            return self
        return Abstainer(self.scorer, self.evidence, fit_rule(self.evidence, settings, n_classes, self.label_sets),
                         self.label_sets)

    def save(self, path: Path) -> None:
        """Write ``ood.safetensors`` and ``ood.json`` into the model folder ``path``."""
        from safetensors.numpy import save_file

        arrays = {**self.evidence.arrays(), **self.scorer.arrays()}
        meta = {"format_version": OOD_FORMAT, "label_sets": self.label_sets, "rule": self.rule.to_json(),
                **self.scorer.describe()}
        with atomic_files(path, [OOD_FILE, OOD_META]) as tmp:  # the json last: it marks a complete pair
            save_file(arrays, str(tmp / OOD_FILE))
            write_json(tmp / OOD_META, meta)

    @classmethod
    def load(cls, path: Path) -> Abstainer | None:
        """The abstainer stored in ``path`` (None for a folder made before abstention existed)."""
        meta_path, data_path = path / OOD_META, path / OOD_FILE
        if not meta_path.is_file() or not data_path.is_file():
            return None
        from safetensors.numpy import load_file

        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            arrays = load_file(str(data_path))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read {OOD_META} / {OOD_FILE} ({exc}); retrain, or fit them again with "
                            "`run.py abstain`") from None
        if not isinstance(meta, dict) or meta.get("format_version") != OOD_FORMAT:
            raise UserError(f"{meta_path}: unknown format; fit it again with `run.py abstain` or retrain")
        detector = None
        if meta.get("method") in METHODS:
            parts = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("detector.")}
            detector = Detector(str(meta["method"]), parts)
        density = None
        if meta.get("density"):
            density = TextDensity.from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items()
                                               if k.startswith("density.")})
        # folders written before the exact floats may hold a scale rounded to 0: robust_norm's fallback of 1
        norms = {k: (float(v[0]), usable_scale(float(v[1]))) for k, v in (meta.get("norms") or {}).items()}
        scorer = OodScorer(detector, density, norms, members=meta.get("method") == "members")
        return cls(scorer, DevEvidence.from_arrays(arrays), RejectRule.from_json(meta.get("rule")),
                   bool(meta.get("label_sets")))

    def describe(self) -> dict:
        return {"ood_method": self.scorer.describe()["method"], "reject": self.rule.mode,
                "ood_threshold": self.rule.ood_threshold, "target": self.rule.target}
