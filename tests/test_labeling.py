"""Choosing texts to label and the Label Studio / doccano round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cls_app import TextClassifier
from cls_app.errors import UserError
from cls_app.workflow.labeling import SelectSettings, choose, import_labels, near_key, uncertainty

from .conftest import run_main, toy_texts, write_csv


@pytest.fixture(scope="module")
def model():
    return TextClassifier(kind="char_lr").fit(*toy_texts(200, 1), dev=toy_texts(100, 2))


def test_margin_picks_the_least_certain_and_collapses_duplicates(model):
    sure = [t for t in toy_texts(40, 3)[0]]
    mixed = ["这个好棒差劲", "这个满意糟失望", "这个喜爱退货"]  # both classes' characters
    pool = [*sure, *mixed, "这个好棒差劲!!", "这个 好棒差劲 "]  # near duplicates of the first mixed text
    got = choose(model, pool, labeled=[sure[0]], settings=SelectSettings(budget=3, strategy="margin"))
    assert {p.text for p in got.picks} <= set(mixed) and len(got.picks) == 3
    assert got.duplicates >= 2 and got.already_labeled >= 1
    scores = [p.score for p in got.picks]
    assert scores == sorted(scores)
    margin, entropy = uncertainty(model, model.predict_proba([p.text for p in got.picks]))
    assert np.allclose(margin, scores, atol=1e-5) and (entropy > 0).all()
    assert near_key("这个 好棒!! 123") == near_key("这个好棒")


@pytest.mark.parametrize("strategy", ["random", "entropy", "diverse"])
def test_every_strategy_and_balance_give_distinct_pool_texts(model, strategy):
    pool = toy_texts(120, 4)[0]
    got = choose(model, pool, [], SelectSettings(budget=20, strategy=strategy, balance=True))
    texts = [p.text for p in got.picks]
    assert len(texts) == 20 == len(set(texts)) and set(texts) <= set(pool)
    assert set(got.classes) == {"正面", "负面"} and abs(got.classes["正面"] - got.classes["负面"]) <= 1


def test_label_studio_round_trip_with_skips_and_disagreements(model, tmp_path, capsys):
    write_csv(tmp_path / "pool.csv", toy_texts(60, 5)[0], ["?"] * 60)
    folder = model.save(tmp_path / "m")
    code, out, err = run_main(capsys, "select", "--model", str(folder), "--pool", str(tmp_path / "pool.csv"),
                              "--text-col", "text", "--budget", "4", "--to", "label-studio",
                              "--out", str(tmp_path / "tasks.json"))
    assert code == 0, err
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    config = (tmp_path / "tasks.label_config.xml").read_text(encoding="utf-8")
    assert len(tasks) == 4 and '<Choices name="label" toName="text"' in config and 'value="正面"' in config
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"].startswith("char_lr") and 0 < pred["score"] <= 1
    assert pred["result"][0]["value"]["choices"][0] in config
    # what a Label Studio export looks like: annotations per task (one skipped, one cancelled, one disputed)
    def ann(choice, cancelled=False):
        return {"was_cancelled": cancelled, "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                                        "value": {"choices": [choice]}}]}
    tasks[0]["annotations"] = [ann("正面")]
    tasks[1]["annotations"] = [ann("负面"), ann("正面")]
    tasks[2]["annotations"] = [ann("负面", cancelled=True)]
    tasks[3]["annotations"] = []
    (tmp_path / "export.json").write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    code, out, err = run_main(capsys, "import-labels", str(tmp_path / "export.json"), "--from", "label-studio",
                              "--out", str(tmp_path / "labeled.csv"))
    assert code == 0, err
    assert "wrote 1 labeled rows" in out and "2 skipped or cancelled" in out and "1 tasks whose annotators" in out
    rows = pd.read_csv(tmp_path / "labeled.csv")
    assert rows.to_dict("records") == [{"text": tasks[0]["data"]["text"], "label": "正面"}]
    conflicts = pd.read_csv(tmp_path / "labeled.conflicts.csv")
    assert conflicts["answers"].tolist() == ["负面 | 正面"]


def test_doccano_round_trip_and_bad_exports(model, tmp_path, capsys):
    write_csv(tmp_path / "pool.csv", toy_texts(30, 6)[0], ["?"] * 30)
    folder = model.save(tmp_path / "m")
    code, _, err = run_main(capsys, "select", "--model", str(folder), "--pool", str(tmp_path / "pool.csv"),
                            "--text-col", "text", "--budget", "3", "--to", "doccano",
                            "--out", str(tmp_path / "d.jsonl"))
    assert code == 0, err
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3 and all(set(x) >= {"text", "label"} for x in lines)
    got = import_labels(tmp_path / "d.jsonl", "doccano")
    assert [r[1] for r in got.rows] == [x["label"][0] for x in lines]
    (tmp_path / "bad.json").write_text('{"not": "an export"}', encoding="utf-8")
    with pytest.raises(UserError, match="not a Label Studio JSON export"):
        import_labels(tmp_path / "bad.json", "label-studio")
    (tmp_path / "bad.jsonl").write_text("{broken\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 1: not JSON"):
        import_labels(tmp_path / "bad.jsonl", "doccano")


def test_serve_speaks_the_label_studio_ml_backend_protocol(model, tmp_path):
    from fastapi.testclient import TestClient

    from cls_app.service.app import create_app
    from cls_app.service.settings import ServeSettings

    served = TextClassifier.load(model.save(tmp_path / "m"))
    with TestClient(create_app(served, ServeSettings(max_wait_ms=0))) as client:
        health = client.get("/label-studio/health").json()
        assert health["status"] == "UP" and health["model_version"].startswith("cls_app-")
        config = ('<View><Text name="review" value="$content"/><Choices name="sentiment" toName="review">'
                  '<Choice value="正面"/><Choice value="负面"/></Choices></View>')
        assert client.post("/label-studio/setup", json={"project": "1.1", "schema": config}).json() == {
            "model_version": health["model_version"]}
        tasks = [{"id": 1, "data": {"content": "这个好棒满意"}}, {"id": 2, "data": {"content": "hello world"}},
                 {"id": 3, "data": {"content": ""}}]
        body = client.post("/label-studio/predict", json={"tasks": tasks, "label_config": config}).json()
        first, junk, empty = body["results"]
        assert first["result"] == [{"from_name": "sentiment", "to_name": "review", "type": "choices",
                                    "value": {"choices": ["正面"]}}]
        assert 0.5 < first["score"] <= 1 and first["model_version"] == health["model_version"]
        assert junk["result"] == [] and empty["result"] == []  # abstained: no pre-annotation
        bad = client.post("/label-studio/predict", json={"nope": 1})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_request"


def test_self_training_adds_confident_pseudo_labels_only_while_dev_improves():
    import functools
    import random

    from cls_app.io.records import LabeledData
    from cls_app.tasks import SingleLabel
    from cls_app.workflow.self_training import self_train

    from .conftest import NEG_CHARS, POS_CHARS

    def noisy(n: int, seed: int) -> tuple[list[str], list[str]]:  # 72 % of a text's characters from its class
        rng, texts, labels = random.Random(seed), [], []
        for i in range(n):
            label = "正面" if i % 2 == 0 else "负面"
            own, other = (POS_CHARS, NEG_CHARS) if label == "正面" else (NEG_CHARS, POS_CHARS)
            texts.append("".join(rng.choice(own if rng.random() < 0.72 else other) for _ in range(rng.randint(4, 8))))
            labels.append(label)
        return texts, labels

    train, dev = LabeledData(*noisy(20, 1), "few"), LabeledData(*noisy(300, 2), "dev")
    make = functools.partial(TextClassifier, kind="char_nb", seed=0)
    model, report = self_train(make, train, dev, SingleLabel(), noisy(3000, 3)[0], "macro_f1")
    kept = [r for r in report["rounds"] if r.get("kept")]
    assert kept and report["kept_rounds"] == len(kept) and report["added"] == sum(r["added"] for r in kept)
    assert report["dev_with"] > report["dev_without"] + 0.002  # it kept only what raised dev
    assert all(r["threshold"] <= 1.0 for r in report["rounds"])
    assert model.meta["self_training"] == report
    weak = LabeledData(*noisy(4, 1), "four")  # no threshold reaches 95 % on dev: nothing added, the model kept
    _, none = self_train(make, weak, dev, SingleLabel(), noisy(500, 4)[0], "macro_f1")
    assert none["added"] == 0 and none["dev_with"] == none["dev_without"]


def test_baseline_unlabeled_records_the_self_training(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", *toy_texts(60, 1))
    dev = write_csv(tmp_path / "dev.csv", *toy_texts(60, 2))
    (tmp_path / "pool.txt").write_text("\n".join(toy_texts(200, 3)[0]) + "\n", encoding="utf-8")
    code, _, err = run_main(capsys, "baseline", "--train", str(train), "--dev", str(dev), "--models", "char_nb",
                            "--unlabeled", str(tmp_path / "pool.txt"), "--out", str(tmp_path / "b"))
    assert code == 0, err
    meta = json.loads((tmp_path / "b" / "char_nb" / "baseline.json").read_text(encoding="utf-8"))
    report = meta["self_training"]
    assert report["rounds"] and report["dev_with"] >= report["dev_without"]
