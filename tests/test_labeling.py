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
