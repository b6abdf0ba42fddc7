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
# every default kind, the slow ones made small
QUICK = ["--set", "textcnn.min_steps=60", "--set", "textcnn.embed=32", "--set", "textcnn.filters=32",
         "--set", "fasttext.min_examples=5000", "--set", "fasttext.dim=16"]


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    """One run of the main job on the noisy toy task (read-only: a test that writes into it works on a copy)."""
    root = tmp_path_factory.mktemp("main_job")
    files = noisy_files(root)
    out = root / "run"
    rc, text, err = run_captured("-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]),
                                 "--test", str(files["test"]), "--out", str(out), "--epochs", "2", "--with-baselines",
                                 "--no-cache", *TINY_MODEL_ARGS, *QUICK)
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
    # offered: BERT, every baseline but the floor, fasttext and textcnn; kept: those the dev fit weighs, and not
    # one that declares most of the members' cost for nothing
    offered = ens["offered"]
    assert len(offered) == 9 and offered[0] == "run"
    dropped = len(ens.get("pruned", {}).get("dropped", [])) + ("dropped" in ens["cost"])
    assert len(ens["members"]) == 9 - dropped
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
    fast = best["fast"]  # the fastest candidate within 0.5 points of the recommended one on dev
    assert fast["dev"]["macro_f1"] >= scores[best["name"]] - 0.005 - 1e-9 and fast["texts_per_s"] > 0
    assert (out / fast["path"]).is_dir()
    assert "## Recommended model" in md and f"**{best['name']}**" in md and "| ensemble | ensemble |" in md
    lines = job["stdout"].splitlines()
    assert [line for line in lines if line.startswith("recommended:")] == [line for line in lines if line.startswith(
        f"recommended: {best['name']} (")]  # the recommendation once
    assert len([line for line in lines if line.startswith("recommended:")]) == 1


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


# --------------------------------------------------------------------------- a job that never loses its work

CHEAP = ["--kinds", "bert", "char_svm", "word_nb", "majority", "textcnn", "--set", "textcnn.min_steps=40",
         "--set", "textcnn.embed=16", "--set", "textcnn.filters=16", "--set", "textcnn.buckets=2000"]


def cheap_job(files: dict, out: Path, *extra: str) -> list[str]:
    """A small main job: a tiny BERT for one epoch, three baselines and a small textcnn."""
    return ["-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"]),
            "--out", str(out), "--epochs", "1", "--no-cache", "--with-baselines", *TINY_MODEL_ARGS, *CHEAP, *extra]


def boom(*args, **kwargs):
    raise RuntimeError("injected failure")


FAULTS = {
    # each group of failures in one run (module, attribute path): every one is skipped or done without, the rest
    # of the job completes; the step job.json names (None: a drawing the report goes on without)
    "a kind, the ensemble, the chart": {("cls_app.models.tfidf", "CharSvm.fit_task"): "fitting char_svm",
                                        ("cls_app.workflow.main_job", "fit_job_ensemble"): "the ensemble",
                                        ("cls_app.evaluation.compare", "plot_comparison"): None},
    "the BERT, calibration, the page": {("cls_app.models.bert", "BertTextClassifier.fit_task"): "fitting bert",
                                        ("cls_app.tasks.single", "SingleLabel.fit_decisions"):
                                            "char_svm: calibration and decisions",
                                        ("cls_app.evaluation.compare", "comparison_page"): None},
    "abstention, the test report": {("cls_app.models.ood", "OodScorer.fit_norms"): "bert: abstention",
                                    ("cls_app.evaluation.report", "evaluate"): "the BERT's test report"},
}


def inject(monkeypatch, module: str, path: str) -> None:
    import importlib

    owner = importlib.import_module(module)
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    monkeypatch.setattr(owner, attr, boom)


@pytest.mark.slow
@pytest.mark.parametrize("group", list(FAULTS))
def test_a_failing_optional_step_is_skipped_and_the_rest_of_the_job_completes(group, tmp_path, capsys,
                                                                               monkeypatch) -> None:
    from cls_app import load

    for module, path in FAULTS[group]:
        inject(monkeypatch, module, path)
    out = tmp_path / "run"
    rc, _, err = run_main(capsys, *cheap_job(noisy_files(tmp_path), out))
    assert rc == 0, err
    job = json.loads((out / "job.json").read_text(encoding="utf-8"))
    skipped = {s["step"] for s in job["skipped"]}
    for step in (s for s in FAULTS[group].values() if s):
        assert step in skipped, (step, skipped)
    best = json.loads((out / "best.json").read_text(encoding="utf-8"))
    recommended = load(out)  # the recommendation is one of the models that exist
    assert recommended.path == (out / best["path"]).resolve() or recommended.path == out / best["path"]
    assert recommended.predict(["这个好棒"])[0].label in ("正面", "负面")
    assert (out / "comparison" / "comparison.md").is_file()
    if "fitting bert" in skipped:
        assert not (out / "config.json").exists()
    else:  # the BERT's folder is complete and loadable whatever failed after it
        assert load(out, follow=False).predict(["这个好棒"])[0].label in ("正面", "负面")
    if group == "a kind, the ensemble, the chart":
        assert not (out / "baselines" / "char_svm").exists() and not (out / "ensemble").exists()
        assert not (out / "comparison" / "comparison.png").exists()
    if group == "abstention, the test report":
        assert not (out / "test_eval").exists() and "abstain" not in load(out, follow=False).describe()


@pytest.mark.slow
def test_strict_makes_a_failing_optional_step_an_error(tmp_path, capsys, monkeypatch) -> None:
    inject(monkeypatch, "cls_app.workflow.main_job", "fit_job_ensemble")
    rc, _, err = run_main(capsys, *cheap_job(noisy_files(tmp_path), tmp_path / "run", "--strict"))
    assert rc == 1 and err.strip().splitlines()[-1].startswith("error: the ensemble failed (RuntimeError: injected")


@pytest.mark.slow
def test_resume_finishes_the_whole_job_it_resumes(tmp_path, capsys, monkeypatch) -> None:
    """Interrupted after the BERT has finished (in the ensemble): --resume loads that BERT, fits the other
    kinds again and completes the ensemble, the recommendation and the comparison, as the uninterrupted job."""
    from cls_app.interrupts import Interrupted

    files = noisy_files(tmp_path)
    reference = tmp_path / "reference"
    assert run_main(capsys, *cheap_job(files, reference))[0] == 0

    def interrupted(*args, **kwargs):
        raise Interrupted(2)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        import cls_app.workflow.main_job as main_job

        m.setattr(main_job, "fit_job_ensemble", interrupted)
        rc, _, err = run_main(capsys, *cheap_job(files, out))
    assert rc == 130 and (out / "metrics.json").is_file() and not (out / "best.json").exists()
    rc, _, err = run_main(capsys, "-q", "train", "--resume", str(out))
    assert rc == 0, err
    for folder in (out, reference):
        assert (folder / "ensemble" / "ensemble.json").is_file() and (folder / "comparison" / "comparison.md").is_file()
    ours, theirs = (json.loads((f / "best.json").read_text(encoding="utf-8")) for f in (out, reference))
    assert ours["name"] == theirs["name"].replace("reference", "run") and ours["dev"] == theirs["dev"]
    rows = [{r["name"]: r["accuracy"] for r in json.loads((f / "comparison" / "comparison.json").read_text())["models"]}
            for f in (out, reference)]
    assert rows[0] == {k.replace("reference", "run"): v for k, v in rows[1].items()}
    rc, _, err = run_main(capsys, "-q", "train", "--resume", str(out))
    assert rc == 2 and "the run finished: job.json is there" in err


DEGENERATE_FILES = {
    "one text, labels a/b": "text,label\n" + "同一条文本,a\n同一条文本,b\n" * 30,
    "NUL bytes and a repeated header": ("text,label\n" + "\x00\x00abc,1\n" * 50 + "text,label\n"
                                        + "\x00\x00abd,2\n" * 50),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DEGENERATE_FILES))
def test_the_main_job_on_degenerate_files_finishes_or_refuses_in_one_line(name, tmp_path, capsys) -> None:
    path = tmp_path / "data.csv"
    path.write_text(DEGENERATE_FILES[name], encoding="utf-8")
    rc, _, err = run_main(capsys, "-q", "train", "--train", str(path), "--out", str(tmp_path / "run"), "--epochs",
                          "1", "--no-cache", "--with-baselines", *TINY_MODEL_ARGS, *CHEAP)
    assert rc in (0, 2) and "Traceback" not in err, err
    if rc == 2:
        assert err.strip().count("\n") == 0 and err.startswith("error: "), err
    else:
        assert (tmp_path / "run" / "best.json").is_file() and (tmp_path / "run" / "job.json").is_file()
