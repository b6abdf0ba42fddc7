"""A fitted scikit-learn estimator as JSON plus arrays (safetensors), with no code in the file.

:func:`encode` walks an estimator's state (what ``__getstate__`` returns, as pickle and skops do)
and writes a JSON tree whose leaves are plain values; every numeric array goes into one
safetensors file under a generated key. :func:`decode` rebuilds the estimator, constructing only
the classes of :data:`CLASSES` and naming only the functions and types of :data:`NAMES`: a file
that mentions anything else is refused before any object is built. Importing scikit-learn's
estimators is all a load costs (skops imports every estimator scikit-learn has, seconds).

Tree nodes: ``null``, booleans, integers, strings and finite floats as themselves, lists as
lists, and tagged objects: ``{"$float": "nan"}``, ``{"$tuple": [...]}``, ``{"$dict": {...}}``
(string keys), ``{"$array": key}`` (a numeric array in the safetensors file), ``{"$strings": [...],
"dtype": ...}`` (an array of strings), ``{"$scalar": value, "dtype": ...}`` (a NumPy scalar),
``{"$name": "module.name"}`` (an allowed function or type) and ``{"$object": "module.Class",
"state": {...}}`` (an allowed class, restored with ``__setstate__``).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from ..errors import UserError

CLASSES = (
    "sklearn.pipeline.Pipeline",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.naive_bayes.MultinomialNB",
    "sklearn.dummy.DummyClassifier",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.multiclass._ConstantPredictor",
    "sklearn.preprocessing._label.LabelBinarizer",
    "cls_app.baselines.tfidf.CompactTfidfVectorizer",
    "cls_app.baselines.pairs.PairFeatures",
)
"""The classes a baseline file may construct (a Python class name: module and qualified name)."""

NAMES = ("cls_app.baselines.jieba_tokens", "numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32")
"""The functions and types a baseline file may refer to (the tokenizer, a vectorizer's dtype)."""


def qualified(obj: Any) -> str:
    """``module.name`` of a class or function."""
    return f"{obj.__module__}.{obj.__qualname__}"


def encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON tree of ``obj``; its numeric arrays are added to ``arrays`` (a :class:`ValueError` for
    anything else)."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if isinstance(obj, list):
        return [encode(v, arrays) for v in obj]
    if isinstance(obj, tuple):
        return {"$tuple": [encode(v, arrays) for v in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise ValueError(f"a dict with keys that are not strings: {sorted(map(repr, obj))[:3]}")
        return {"$dict": {k: encode(v, arrays) for k, v in obj.items()}}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "U":
            return {"$strings": obj.tolist(), "dtype": obj.dtype.str}
        if obj.dtype.kind not in "biuf":
            raise ValueError(f"an array of dtype {obj.dtype}")
        key = str(len(arrays))
        arrays[key] = np.ascontiguousarray(obj)
        return {"$array": key}
    if isinstance(obj, np.generic):
        return {"$scalar": encode(obj.item(), arrays), "dtype": obj.dtype.str}
    name = qualified(obj) if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__") else None
    if name in NAMES:
        return {"$name": name}
    kind = qualified(type(obj))
    if kind in CLASSES:
        return {"$object": kind, "state": encode(obj.__getstate__(), arrays)}
    raise ValueError(f"cannot store a {kind}")


def _resolve(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def decode(node: Any, arrays: dict[str, np.ndarray], names: set[str] | None = None) -> Any:
    """The object of a tree :func:`encode` wrote (a :class:`UserError` for a class or name not allowed);
    ``names`` collects the functions and types it refers to."""
    names = set() if names is None else names
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, list):
        return [decode(v, arrays, names) for v in node]
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise UserError(f"unexpected entry {str(node)[:80]!r}")
    tag = next(iter(node))
    value = node[tag]
    if tag == "$float":
        return float(value)
    if tag == "$tuple":
        return tuple(decode(v, arrays, names) for v in value)
    if tag == "$dict":
        return {str(k): decode(v, arrays, names) for k, v in value.items()}
    if tag == "$array":
        if value not in arrays:
            raise UserError(f"array {value!r} is missing")
        return arrays[value]
    if tag == "$strings":
        return np.array(value, dtype=str(node.get("dtype", "<U1")))
    if tag == "$scalar":
        return np.dtype(str(node["dtype"])).type(decode(value, arrays, names))
    if tag == "$name":
        if value not in NAMES:
            raise UserError(f"refers to {value!r}, which this app does not trust")
        names.add(value)
        return _resolve(value)
    if tag == "$object":
        if value not in CLASSES:
            raise UserError(f"contains a {value}, a type this app does not trust")
        cls = _resolve(value)
        obj = cls.__new__(cls)
        state = decode(node.get("state"), arrays, names)
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(state)
        else:
            obj.__dict__.update(state)
        return obj
    raise UserError(f"unknown entry {tag!r}")
