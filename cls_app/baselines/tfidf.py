"""A TfidfVectorizer that saves compactly (in ``model.json`` and in the ``model.skops`` of format-1 folders).

skops writes a dict entry by entry into its JSON schema: about 600 bytes per term, over
100 MB for a 170k-term character vocabulary, and seconds to parse. Here the fitted
vocabulary is saved as one numpy string array (stored as .npy, no pickle) and rebuilt on
load; fitting and transforming are TfidfVectorizer's own.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer


class CompactTfidfVectorizer(TfidfVectorizer):
    """TfidfVectorizer whose ``vocabulary_`` is serialized as a string array."""

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: never change the live object
        vocab = state.get("vocabulary_")
        # numpy strings drop trailing NULs: keep the plain dict for such (odd) terms
        if isinstance(vocab, dict) and vocab and not any(t.endswith("\x00") for t in vocab):
            del state["vocabulary_"]
            state["vocabulary_terms_"] = np.array(sorted(vocab, key=vocab.__getitem__), dtype=str)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        terms = state.pop("vocabulary_terms_", None)
        super().__setstate__(state)
        if terms is not None:
            self.vocabulary_ = {t: i for i, t in enumerate(terms.tolist())}
