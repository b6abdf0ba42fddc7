"""The main job end to end: ``train --with-baselines`` once for the module (the BERT, every baseline, fasttext,
textcnn, their ensemble, the recommendation and the comparison), then what each part wrote."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cls_app.commands import main

from .conftest import TINY_MODEL_ARGS, noisy_files, run_captured, run_main

BASELINES = ["char_lr", "char_svm", "char_nb", "word_lr", "word_svm", "word_nb", "majority"]


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    """One run of the main job on the noisy toy task (read-only: a test that writes into it works on a copy)."""
    root = tmp_path_factory.mktemp("main_job")
    files = noisy_files(root)
    out = root / "run"
    rc, text, err = run_captured("-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]),
                                 "--test", str(files["test"]), "--out", str(out), "--epochs", "2", "--with-baselines",
                                 "--no-cache", *TINY_MODEL_ARGS)
    assert rc == 0, err
    return {"out": out, "files": files, "stdout": text, "root": root}


@pytest.mark.slow
def test_every_baseline_is_saved_and_compared_and_evaluate_reads_one(job, tmp_path, capsys) -> None:
    out, files = job["out"], job["files"]
    for name in BASELINES:
        assert (out / "baselines" / name / "model.safetensors").is_file(), name
    md = (out / "comparison" / "comparison.md").read_text(encoding="utf-8")
    for name in ["run", *BASELINES, "fasttext", "textcnn", "ensemble"]:
        assert f"| {name} |" in md, name
    assert "**" in md and "McNemar" in md
    summary = json.loads((out / "comparison" / "comparison.json").read_text(encoding="utf-8"))
    assert summary["n"] == 120 and summary["significance"]["a"] == "run"
    assert all(m["texts_per_s"] > 0 and m["size_bytes"] > 0 for m in summary["models"])

    assert main(["-q", "evaluate", "--model", str(out / "baselines" / "char_svm"),
                 "--data", str(files["test"]), "--out", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    baseline = json.loads((out / "baselines" / "char_svm" / "baseline.json").read_text(encoding="utf-8"))
    assert report["accuracy"] == pytest.approx(baseline["test"]["accuracy"]) and report["n"] == 120

    assert main(["-q", "compare", "--models", str(out / "baselines" / "majority"), str(tmp_path / "nope"),
                 "--data", str(files["test"])]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_the_ensemble_is_built_and_the_recommendation_is_the_best_on_dev(job) -> None:
    out = job["out"]
    ens = json.loads((out / "ensemble" / "ensemble.json").read_text(encoding="utf-8"))
    # offered: BERT, every baseline but the floor, fasttext and textcnn; kept: those the dev fit weighs
    offered = ens["pruned"]["offered"] if "pruned" in ens else [m["name"] for m in ens["members"]]
    assert len(offered) == 9 and offered[0] == "run"
    assert len(ens["members"]) == 9 - len(ens.get("pruned", {}).get("dropped", []))
    best = json.loads((out / "best.json").read_text(encoding="utf-8"))
    assert (out / best["path"]).is_dir() and best["kind"] in ("bert", "baseline", "ensemble", "fasttext", "textcnn")
    assert best["comparison"]["split"] == "test" and best["comparison"]["versus"]
    # the dev scores are those of each candidate's final, cross-fitted decisions; the leader is the highest,
    # and the choice is the leader unless dev cannot separate it from others (then the rule picks among them)
    scores = {"run": json.loads((out / "metrics.json").read_text())["dev_final"]["macro_f1"],
              "ensemble": ens["dev"]["ensemble_final"]["macro_f1"]}
    for meta_path in [*(out / "baselines").glob("*/baseline.json"), *(out / "baselines").glob("*/classifier.json")]:
        meta = json.loads(meta_path.read_text())
        if meta["name"] != "majority":
            scores[meta["name"]] = meta["dev"]["macro_f1"]
    assert {"fasttext", "textcnn"} <= set(scores)
    selection = best["selection"]
    assert scores[selection["leader"]] == pytest.approx(max(scores.values()), abs=1e-5)
    pool = [selection["leader"], *selection["tied"]]
    assert best["name"] in pool and set(selection["versus_leader"]) == set(scores) - {selection["leader"]}
    from cls_app.evaluation.recommend import RULE

    assert selection["rule"] == RULE
    if not selection["tied"]:
        assert best["name"] == selection["leader"]
    elif RULE == "ensemble" and "ensemble" in pool:
        assert best["name"] == "ensemble"
    md = (out / "comparison" / "comparison.md").read_text(encoding="utf-8")
    fast = best["fastest"]  # the fastest candidate within 0.5 points of the recommended one on dev
    assert fast["dev"]["macro_f1"] >= scores[best["name"]] - 0.005 - 1e-9 and fast["texts_per_s"] > 0
    assert (out / fast["path"]).is_dir()
    assert "## Recommended model" in md and f"**{best['name']}**" in md and "| ensemble | ensemble |" in md
    assert "recommended model:" in job["stdout"]


@pytest.mark.slow
def test_predict_follows_best_json_and_a_new_run_clears_the_old_pointer(job, tmp_path, capsys, caplog) -> None:
    import shutil

    from cls_app.models import load

    out = Path(shutil.copytree(job["root"], tmp_path / "copy")) / "run"  # members are referenced relatively
    files = {k: out.parent / v.name for k, v in job["files"].items()}
    best = json.loads((out / "best.json").read_text(encoding="utf-8"))
    # predict --model OUT follows best.json (and says so); --no-follow keeps the BERT
    caplog.set_level(logging.INFO, logger="cls_app")
    followed = load(out)
    assert followed.path == (out / best["path"] if best["path"] != "." else out)
    if best["path"] != ".":
        assert "best.json recommends" in caplog.text
    assert load(out, follow=False).kind == "bert"
    rc, a, _ = run_main(capsys, "-q", "predict", "--model", str(out), "--text", "这个好棒")
    rc2, b, _ = run_main(capsys, "-q", "predict", "--model", str(out), "--no-follow", "--text", "这个好棒")
    assert rc == rc2 == 0 and a.split("\t")[0] in ("正面", "负面") and b.split("\t")[0] in ("正面", "负面")

    # a broken pointer is one clear error; a new run into OUT removes the old pointer and ensemble
    (out / "best.json").write_text('{"path": "nowhere"}', encoding="utf-8")
    rc, _, err = run_main(capsys, "-q", "predict", "--model", str(out), "--text", "好")
    assert rc == 2 and "--no-follow" in err
    rc, _, err = run_main(capsys, "-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]),
                          "--out", str(out), "--epochs", "1", "--no-cache", *TINY_MODEL_ARGS)
    assert rc == 0, err
    assert not (out / "best.json").exists() and not (out / "ensemble").exists()
