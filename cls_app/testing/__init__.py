"""Conformance checks every model kind passes, in the manner of scikit-learn's ``check_estimator``.

>>> from cls_app.testing import check_kind
>>> check_kind("char_svm")                      # raises AssertionError naming the failed check  # doctest: +SKIP
>>> check_kind(MyKind, settings={"dim": 8})     # a third-party kind, with settings of its own  # doctest: +SKIP

:func:`kind_checks` lists the checks that apply to a kind, chosen from what it declares (the tasks
it fits, sentence pairs, whether it is the floor): fitting from lists, probabilities that are
distributions, a save/load round trip that predicts and abstains identically, empty texts as NaN
rows, bad input as one :class:`~cls_app.errors.UserError`, ``get_params`` / ``clone`` /
``set_params``, the same outputs for the same seed, label sets and sentence pairs where the kind
takes them, and the degenerate-data battery (:data:`DEGENERATE`): each set either fits, with finite
outputs that survive a save and load, or is refused with one ``UserError``. A kind's
``quick_settings`` (its declaration of settings that fit a toy task in about a second) are used
unless ``settings`` are given.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..models.base import TextClassifier, kind_class, load

__all__ = ["DEGENERATE", "CHECKS", "KindUnderTest", "check_kind", "degenerate_sets", "fits_or_refuses", "kind_checks",
           "random_set", "toy_task"]

POS = "好棒赞喜爱优美快乐满意推荐"
NEG = "差烂坏慢贵糟差劲失望退货"


def toy_task(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """A separable two-class toy task: texts built from disjoint character sets."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = "正面" if i % 2 == 0 else "负面"
        chars = POS if label == "正面" else NEG
        texts.append("这个" + "".join(rng.choice(chars) for _ in range(rng.randint(3, 12))))
        labels.append(label)
    return texts, labels


GROUPS = {"体育": "球赛跑跳泳冠", "财经": "股票基金涨跌", "科技": "手机电脑芯片"}


def label_set_task(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    texts, sets = [], []
    for _ in range(n):
        chosen = rng.sample(sorted(GROUPS), rng.choice((1, 1, 2)))
        body = "".join(rng.choice(GROUPS[g]) for g in chosen for _ in range(5))
        texts.append("".join(rng.sample(body, len(body))))
        sets.append(chosen)
    return texts, sets


@dataclass
class KindUnderTest:
    """A kind, the settings its checks fit it with, and its toy model (fitted once, shared by the checks)."""

    name: str
    settings: dict[str, Any]
    train: tuple[list[str], list[str]] = field(default_factory=lambda: toy_task(160, 1))
    dev: tuple[list[str], list[str]] = field(default_factory=lambda: toy_task(40, 2))
    test: tuple[list[str], list[str]] = field(default_factory=lambda: toy_task(40, 3))
    _fitted: TextClassifier | None = None

    @property
    def cls(self) -> type[TextClassifier]:
        return kind_class(self.name)

    def make(self, **extra: Any) -> TextClassifier:
        """An unfitted model of the kind with its check settings (a combining kind's members fresh each time)."""
        values = {**self.settings, **extra}
        if "members" in values:
            values["members"] = [m if isinstance(m, str) else m.clone() for m in values["members"]]
        return TextClassifier(kind=self.name, **values)

    def fitted(self) -> TextClassifier:
        if self._fitted is None:
            self._fitted = self.make().fit(*self.train, dev=self.dev)
        return self._fitted


# --------------------------------------------------------------------------- the checks


def check_fits_and_predicts_distributions(k: KindUnderTest) -> None:
    model = k.fitted()
    texts, gold = k.test
    assert model.kind == k.name and model.labels == ["正面", "负面"] and model.task.name == "single-label"
    probs = model.predict_proba(texts)
    assert probs.shape == (len(texts), 2) and np.all(probs >= 0), probs.shape
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    preds = model.predict(texts, top_k=2)
    assert [p.label for p in preds] == [model.labels[i] for i in probs.argmax(axis=1)]
    assert all(len(p.top) == 2 for p in preds)
    accuracy = float(np.mean([p.label == g for p, g in zip(preds, gold, strict=True)]))
    if model.floor:
        assert accuracy == 0.5, accuracy
    else:
        assert accuracy >= 0.9, f"accuracy {accuracy} on a separable toy task"
    assert model.predict_proba([]).shape == (0, 2)


def check_save_and_load_predict_identically(k: KindUnderTest) -> None:
    model = k.fitted()
    texts = k.test[0] + ["这个", "x" * 300]
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / k.name)
        again = load(folder)
        assert type(again) is type(model) and again.kind == model.kind and again.labels == model.labels
        assert again.task == model.task and again.path == folder
        np.testing.assert_allclose(again.predict_proba(texts), model.predict_proba(texts), rtol=1e-5, atol=1e-6)
        assert [p.label for p in again.predict(texts)] == [p.label for p in model.predict(texts)]
        np.testing.assert_allclose(again.ood_scores(texts), model.ood_scores(texts), rtol=1e-5, atol=1e-6)
        assert [p.abstained for p in again.predict(texts)] == [p.abstained for p in model.predict(texts)]
        if not model.combines:
            assert again.get_params() == {**model.get_params(), "abstain": again.get_params()["abstain"]}, \
                "a loaded folder's settings differ from the fitted model's"


def check_empty_texts_are_nan_rows(k: KindUnderTest) -> None:
    model = k.fitted()
    probs = model.predict_proba(["这个好棒", None, "  ", float("nan"), "这个太差"])
    assert np.isnan(probs[1:4]).all() and not np.isnan(probs[[0, 4]]).any()
    first = model.predict(["", "这个好"])[0]
    assert first.label is None and first.prob is None


def _raises_user_error(fn: Callable[[], Any], needle: str) -> None:
    try:
        fn()
    except UserError as exc:
        assert needle in str(exc), f"the error {str(exc)!r} does not say {needle!r}"
        return
    raise AssertionError(f"no UserError ({needle!r})")


def check_bad_input_is_a_user_error(k: KindUnderTest) -> None:
    model = k.fitted()
    _raises_user_error(lambda: model.predict_proba("这个好"), "single string")
    _raises_user_error(lambda: model.predict_proba([("这个", "好")]), "pairs")
    texts, labels = k.train
    for bad_texts, bad_labels, needle in (
        (texts[:3] + [""], labels[:4], "item 4: empty text"),
        (texts[:4], labels[:3], "4 texts but 3 labels"),
        (texts[:4], ["正面"] * 4, "single class"),
        ("这个好", labels[:1], "single string"),
        (texts[:4], [None, "a", "b", "a"], "item 1: the label"),
    ):
        _raises_user_error(lambda t=bad_texts, y=bad_labels: k.make().fit(t, y), needle)  # type: ignore[misc]
    _raises_user_error(lambda: k.make().predict_proba(["这个"]), "not fitted")


def check_params_round_trip_and_clone(k: KindUnderTest) -> None:
    model = k.make()
    params = model.get_params()
    assert {"seed", "metric", "abstain"} <= set(params), sorted(params)
    again = TextClassifier(kind=k.name, **params)
    assert again.get_params() == params, "get_params() does not round-trip through the constructor"
    fitted = k.fitted()
    copy = fitted.clone()
    assert type(copy) is type(fitted) and not copy.labels and copy.path is None, "clone() is not unfitted"
    if not fitted.combines:
        assert copy.get_params() == fitted.get_params()
    _raises_user_error(lambda: fitted.set_params(seed=1), "unfitted")
    _raises_user_error(lambda: TextClassifier(kind=k.name, not_a_setting_at_all=1), "not_a_setting_at_all")
    changed = k.make().set_params(seed=7)
    assert changed.get_params()["seed"] == 7


def check_the_same_seed_gives_the_same_model(k: KindUnderTest) -> None:
    texts = k.test[0]
    a = k.make().fit(*k.train, dev=k.dev)
    b = k.make().fit(*k.train, dev=k.dev)
    np.testing.assert_allclose(a.predict_proba(texts), b.predict_proba(texts), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.ood_scores(texts), b.ood_scores(texts), rtol=1e-5, atol=1e-5)


def check_label_sets(k: KindUnderTest) -> None:
    train, dev, test = label_set_task(200, 1), label_set_task(60, 2), label_set_task(40, 3)
    model = k.make(**k.cls.quick_label_set_settings).fit(*train, dev=dev)
    assert model.task.name == "multi-label" and model.labels == sorted(GROUPS)
    probs = model.predict_proba(test[0])
    assert probs.shape == (40, 3) and ((probs >= 0) & (probs <= 1)).all()
    right = np.mean([set(p.labels or ()) == set(g) for p, g in zip(model.predict(test[0]), test[1], strict=True)])
    assert right >= 0.6, right
    with tempfile.TemporaryDirectory() as tmp:
        again = load(model.save(Path(tmp) / k.name))
        assert again.task == model.task and getattr(again.task, "thresholds", None) is not None
        np.testing.assert_allclose(again.predict_proba(test[0]), probs, rtol=1e-5, atol=1e-6)


def check_sentence_pairs(k: KindUnderTest) -> None:
    rng = random.Random(0)
    pairs, labels = [], []
    for i in range(160):
        a = "".join(rng.sample("球赛跑跳泳冠", 4))
        b = "".join(rng.sample("球赛跑跳泳冠" if i % 2 else "股票基金涨跌", 4))
        pairs.append((a, b))
        labels.append("same" if i % 2 else "diff")
    model = k.make(**k.cls.quick_pair_settings).fit(pairs, labels)
    assert model.pairs and model.text_pair_col == "text_b"
    _raises_user_error(lambda: model.predict(["球赛"]), "sentence pairs")
    with tempfile.TemporaryDirectory() as tmp:
        again = load(model.save(Path(tmp) / k.name))
        assert again.pairs
        np.testing.assert_allclose(again.predict_proba(pairs[:20]), model.predict_proba(pairs[:20]), rtol=1e-5,
                                   atol=1e-6)
    accuracy = np.mean([p.label == g for p, g in zip(model.predict(pairs), labels, strict=True)])
    if not model.floor:
        assert accuracy >= 0.9, accuracy


# --------------------------------------------------------------------------- degenerate data


def degenerate_sets() -> dict[str, tuple[tuple[list[str], list[str]], tuple[list[str], list[str]] | None]]:
    """Small, legal but degenerate training sets (train, dev): duplicates, few distinct texts, odd characters
    and labels. Each must fit or be refused with one UserError."""
    big = "长" * 20_000
    three = (["我要订机票", "查询天气", "播放音乐"] * 12, ["订票", "天气", "音乐"] * 12)
    return {
        "one text, two labels": ((["同一条文本"] * 40, ["a", "b"] * 20), None),
        "two distinct texts": ((["好评很好", "差评很差"] * 10, ["好", "差"] * 10),
                               (["好评很好", "差评很差"], ["好", "差"])),
        "control characters": (([f"\x01\x02文{i % 3}\x7f\x1b" for i in range(20)], ["x", "y"] * 10), None),
        "NUL bytes": (([f"\x00\x00abc{i % 2}" for i in range(20)], ["1", "2"] * 10), None),
        "three intents repeated": (three, (three[0][:3], three[1][:3])),
        "four rows": ((["这个好", "那个差", "很好", "很差"], ["正", "负", "正", "负"]), None),
        "a label seen once": (([f"文本{i}" for i in range(20)], ["a"] * 10 + ["b"] * 9 + ["c"]), None),
        "a class missing from dev": ((toy_task(40, 5)[0] + ["第三类的文本"] * 4, toy_task(40, 5)[1] + ["三"] * 4),
                                     toy_task(20, 6)),
        "one very long text": (([big, "短"] * 6, ["长", "短"] * 6), None),
        "emoji and mixed scripts": ((["好😀 good", "這個很差 bad 👎", "ＦＵＬＬ全角", "mixed 中文 text"] * 5,
                                     ["p", "n", "p", "n"] * 5), None),
        "numbers, long strings and separators as labels": ((toy_task(24, 7)[0],
                                                            ["12", "a,b##" + "x" * 150] * 12), None),
    }


DEGENERATE = tuple(degenerate_sets())
"""The names of the degenerate training sets every kind fits or refuses cleanly."""


def check_degenerate_data(k: KindUnderTest, which: str) -> None:
    (texts, labels), dev = degenerate_sets()[which]
    fits_or_refuses(k, texts, labels, dev, which, twice=len(texts) <= 24)


def fits_or_refuses(k: KindUnderTest, texts: list[str], labels: list[str], dev: tuple[list[str], list[str]] | None,
                    which: str = "this set", twice: bool = True) -> str:
    """Fit ``k`` on (texts, labels) with ``dev``: ``"refused"`` when it raises one one-line :class:`UserError`;
    else ``"fitted"``, after checking that its probabilities are finite distributions, its out-of-domain scores
    never infinite, every row gets a decision, save and load give the same outputs and (``twice``) fitting again
    with the same seed gives the same probabilities. Anything else raises (AssertionError or the crash itself)."""
    probe = [*dict.fromkeys(texts)][:5] + ["完全不同的东西", "x"]
    try:
        model = k.make().fit(texts, labels, dev=dev)
    except UserError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message.strip(), f"a refusal must be one line: {message!r}"
        return "refused"
    scored = model.score(probe)
    assert np.isfinite(scored.probs).all(), f"non-finite probabilities on {which}"
    np.testing.assert_allclose(scored.probs.sum(axis=1), 1.0, atol=1e-5)
    assert not np.isinf(scored.ood).any(), f"infinite out-of-domain scores on {which}"
    [p.abstained for p in model.predict(probe)]  # a decision for every row
    with tempfile.TemporaryDirectory() as tmp:
        again = load(model.save(Path(tmp) / "m"))
        back = again.score(probe)
        np.testing.assert_allclose(back.probs, scored.probs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(back.ood, scored.ood, rtol=1e-5, atol=1e-5)
    if twice:  # the same seed, the same model
        np.testing.assert_allclose(k.make().fit(texts, labels, dev=dev).score(probe).probs, scored.probs,
                                   rtol=1e-5, atol=1e-6)
    return "fitted"


RANDOM_ALPHABET = "好坏中文天气订票音乐播放查询很差是的了吗這個😀 a1,#\t"


def random_set(rng: random.Random) -> tuple[list[str], list[str], tuple[list[str], list[str]] | None]:
    """A random small labeled set (what a team starting on intents has): 4-60 rows over 2-5 labels, texts of 1-12
    characters from a small alphabet (so duplicates and texts with two labels are common), dev given half the time
    (drawn the same way, so it may lack a class or hold one train lacks)."""
    labels_pool = [f"意图{i}" for i in range(rng.randint(2, 5))]
    distinct = [  # a few distinct texts, repeated
        "".join(rng.choice(RANDOM_ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(1, 15))]

    def draw(n: int) -> tuple[list[str], list[str]]:
        return [rng.choice(distinct) for _ in range(n)], [rng.choice(labels_pool) for _ in range(n)]

    texts, labels = draw(rng.randint(4, 60))
    return texts, labels, draw(rng.randint(2, 20)) if rng.random() < 0.5 else None


CHECKS: dict[str, Callable[..., None]] = {
    "fits_and_predicts_distributions": check_fits_and_predicts_distributions,
    "save_and_load_predict_identically": check_save_and_load_predict_identically,
    "empty_texts_are_nan_rows": check_empty_texts_are_nan_rows,
    "bad_input_is_a_user_error": check_bad_input_is_a_user_error,
    "params_round_trip_and_clone": check_params_round_trip_and_clone,
    "the_same_seed_gives_the_same_model": check_the_same_seed_gives_the_same_model,
    "label_sets": check_label_sets,
    "sentence_pairs": check_sentence_pairs,
}


def kind_checks(kind: str | type[TextClassifier]) -> list[str]:
    """The names of the checks (``CHECKS`` and ``degenerate: SET``) that apply to ``kind``, from its declarations."""
    cls = kind_class(kind) if isinstance(kind, str) else kind
    names = [n for n in CHECKS if n not in ("label_sets", "sentence_pairs")]
    if "multi-label" in cls.tasks:
        names.append("label_sets")
    if cls.takes_pairs and not cls.combines:
        names.append("sentence_pairs")
    return names + [f"degenerate: {d}" for d in DEGENERATE]


def run_check(k: KindUnderTest, name: str) -> None:
    """One check by name (a :func:`kind_checks` name)."""
    if name.startswith("degenerate: "):
        check_degenerate_data(k, name.removeprefix("degenerate: "))
    else:
        CHECKS[name](k)


def check_kind(kind: str | type[TextClassifier], settings: dict[str, Any] | None = None) -> list[str]:
    """Run every check that applies to ``kind`` (a registered name, or a class registered with
    :func:`cls_app.register`); an :class:`AssertionError` names the first that fails. Returns the checks run."""
    cls = kind_class(kind) if isinstance(kind, str) else kind
    name = cls.kind_name
    if kind_class(name) is not cls:
        raise UserError(f"{cls.__name__} is not registered as {name!r}: decorate it with @cls_app.register({name!r})")
    under_test = KindUnderTest(name, dict(cls.quick_settings if settings is None else settings))
    ran = []
    for check in kind_checks(cls):
        try:
            run_check(under_test, check)
        except AssertionError as exc:
            raise AssertionError(f"{name}: check {check!r} failed: {exc}") from exc
        ran.append(check)
    return ran
