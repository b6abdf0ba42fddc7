"""Sentence-pair features for the TF-IDF baselines: TF-IDF of A, of B, ``|a - b|`` and ``a * b``.

One vectorizer is fitted on the first and the second texts together, so ``a`` and ``b`` share
a vocabulary; the four blocks side by side let a linear model weigh what each text says
(``a``, ``b``) and how the two relate: ``|a - b|`` is large where they differ, ``a * b`` where
they share n-grams (the InferSent-style interaction features). A single text (no
:data:`~cls_app.io.pairs.PAIR_SEP`) has an empty B.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from ..io.pairs import split_pair


def _halves(texts) -> tuple[list[str], list[str]]:
    pairs = [split_pair(t) for t in texts]
    return [a for a, _ in pairs], [b or "" for _, b in pairs]


class PairFeatures(TransformerMixin, BaseEstimator):
    """``[tfidf(A), tfidf(B), |tfidf(A) - tfidf(B)|, tfidf(A) * tfidf(B)]`` for pair texts."""

    def __init__(self, vectorizer=None) -> None:
        self.vectorizer = vectorizer

    def fit(self, texts, y=None) -> PairFeatures:
        a, b = _halves(texts)
        self.vectorizer.fit(a + b)
        return self

    def transform(self, texts) -> sparse.csr_matrix:
        a, b = _halves(texts)
        va, vb = self.vectorizer.transform(a), self.vectorizer.transform(b)
        return sparse.hstack([va, vb, abs(va - vb), va.multiply(vb)], format="csr", dtype=np.float64)
