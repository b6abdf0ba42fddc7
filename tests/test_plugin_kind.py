"""A model kind in one file outside the package (docs/examples/char_centroid.py), installed the way a
third-party package is (an entry point in the group ``cls_app.kinds``): it passes the checks every kind
passes, joins the main job, is compared and recommended among the others, loads again and is served."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from cls_app.models import base
from cls_app.testing import check_kind

from .conftest import HTTP, ROOT, TINY_MODEL_ARGS, Server, noisy_files, run_main

EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The example module on the path and a package's metadata naming it in the entry-point group."""
    site = tmp_path_factory.mktemp("site")
    info = site / "cls_app_char_centroid-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cls-app-char-centroid\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{base.ENTRY_POINTS}]\nchar_centroid = char_centroid:CharCentroid\n")
    sys.path[:0] = [str(site), str(EXAMPLES)]
    try:
        yield site
    finally:
        for path in (str(site), str(EXAMPLES)):
            sys.path.remove(path)
        base.KINDS.pop("char_centroid", None)
        base.FAMILIES.pop("char_centroid", None)
        sys.modules.pop("char_centroid", None)


def test_the_plugin_is_found_through_its_entry_point_and_passes_check_kind(plugin) -> None:
    assert "char_centroid" not in base.KINDS  # not imported yet: found by its entry point
    cls = base.kind_class("char_centroid")
    assert cls.__module__ == "char_centroid" and "char_centroid" in base.all_kinds()
    ran = check_kind("char_centroid")
    assert "save_and_load_predict_identically" in ran and "degenerate: one text, two labels" in ran
    assert "sentence_pairs" not in ran  # it declares takes_pairs = False


@pytest.mark.slow
def test_the_plugin_joins_the_main_job_and_is_served(plugin, tmp_path, capsys) -> None:
    files = noisy_files(tmp_path)
    out = tmp_path / "run"
    rc, _, err = run_main(capsys, "-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]),
                          "--test", str(files["test"]), "--out", str(out), "--epochs", "1", "--no-cache",
                          "--with-baselines", "--kinds", "bert", "char_svm", "char_centroid", "majority",
                          "--set", "char_centroid.buckets=512", *TINY_MODEL_ARGS)
    assert rc == 0, err
    folder = out / "baselines" / "char_centroid"
    meta = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
    assert meta["family"] == "char_centroid" and meta["settings"]["buckets"] == 512
    table = (out / "comparison" / "comparison.csv").read_text(encoding="utf-8")
    assert "char_centroid," in table
    best = json.loads((out / "best.json").read_text(encoding="utf-8"))
    assert "char_centroid" in {best["selection"]["leader"], *best["selection"]["versus_leader"]}
    ensemble = json.loads((out / "ensemble" / "ensemble.json").read_text(encoding="utf-8"))
    offered = ensemble.get("pruned", {}).get("offered") or [m["name"] for m in ensemble["members"]]
    assert "char_centroid" in offered and "majority" not in offered
    from cls_app import load

    again = load(folder)
    assert type(again).__name__ == "CharCentroid" and again.get_params()["buckets"] == 512

    # served by `run.py serve` in another process, the plugin importable there as it would be once installed
    server = Server(folder, "--max-wait-ms", "0", env={"PYTHONPATH": os.pathsep.join([str(plugin), str(EXAMPLES)])})
    try:
        r = HTTP.post(server.url + "/predict", json={"texts": ["这个好棒好棒", "这个差劲差劲"]})
        info = HTTP.get(server.url + "/info").json()
    finally:
        status, _, err = server.stop()
    assert r.status_code == 200 and info["model_kind"] == "char_centroid", r.text
    assert [p["label"] for p in r.json()["predictions"]] == ["正面", "负面"]
    assert status == 0, err[-2000:]


def test_a_folder_of_a_kind_no_installed_package_provides_is_one_clear_error(tmp_path) -> None:
    from cls_app import UserError, load

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "classifier.json").write_text(json.dumps({"family": "nobody_has_this", "labels": ["a", "b"]}))
    with pytest.raises(UserError, match="no installed model kind loads folders of family 'nobody_has_this'"):
        load(folder)


def test_the_example_file_is_the_one_the_docs_show() -> None:
    page = (ROOT / "docs" / "adding_a_kind.md").read_text(encoding="utf-8")
    assert "docs/examples/char_centroid.py" in page and Path(EXAMPLES / "char_centroid.py").is_file()
