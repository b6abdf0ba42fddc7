"""Watching a deployed model (issue 36): drift against the folder's reference, the prediction log, /metrics."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from .conftest import run_main, write_csv

SPORT = "篮球比赛运动员进球冠军队员赛场"
MONEY = "银行股票经济贷款汇率储蓄债券"
WEATHER = "天气下雨晴朗气温台风降雪寒潮"


def topic_texts(n: int, seed: int, new_share: float = 0.0) -> tuple[list[str], list[str]]:
    """Two topics; ``new_share`` of the texts from a third topic the model never saw (labelled 体育)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label, chars = ("体育", SPORT) if i % 2 == 0 else ("财经", MONEY)
        if rng.random() < new_share:
            chars = WEATHER
        texts.append("这个" + "".join(rng.choice(chars) for _ in range(rng.randint(4, 9))))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A char_svm fitted on the two topics (train 300, dev 300: the drift reference) by the baseline command."""
    from cls_app.commands import main

    root = tmp_path_factory.mktemp("monitoring")
    train = write_csv(root / "train.csv", *topic_texts(300, 1))
    dev = write_csv(root / "dev.csv", *topic_texts(300, 2))
    assert main(["-q", "baseline", "--train", str(train), "--dev", str(dev), "--out", str(root / "bl"), "--models",
                 "char_svm"]) == 0
    return root


def test_the_folder_keeps_a_reference_and_drift_finds_new_topics(folder, capsys) -> None:
    """Like dev: status 0; a fifth of the texts on a topic the model never saw: status 1, the out-of-domain tail and
    the unknown characters drift; per-window verdicts; drift.json and report.html written."""
    model = folder / "bl" / "char_svm"
    reference = json.loads((model / "reference.json").read_text("utf-8"))
    assert reference["stats"]["texts"] == 300 and sum(reference["stats"]["labels"].values()) == 300
    same = write_csv(folder / "same.csv", *topic_texts(400, 3))
    rc, printed, err = run_main(capsys, "drift", "--model", str(model), "--data", str(same), "--out",
                                str(folder / "d_same"))
    assert rc == 0, printed + err
    assert "no drift on 400 texts" in printed
    shifted = write_csv(folder / "shifted.csv", *topic_texts(400, 4, new_share=0.2))
    rc, printed, err = run_main(capsys, "drift", "--model", str(model), "--data", str(shifted), "--out",
                                str(folder / "d_new"), "--every", "200")
    assert rc == 1, printed + err
    report = json.loads((folder / "d_new" / "drift.json").read_text("utf-8"))
    assert report["drift"] and {"ood_tail", "unknown_chars"} <= set(report["overall"]["drifting"])
    assert len(report["windows"]) == 2 and all(w["drift"] for w in report["windows"])
    page = (folder / "d_new" / "report.html").read_text("utf-8")
    assert "data:image/png;base64," in page and "unknown_chars" in page


def test_predict_logs_and_drift_reads_the_log(folder, capsys, tmp_path) -> None:
    """predict --log-predictions writes one record per text (hash by default, the text with --log-text text); drift
    reads the folder of logs; a folder without a reference needs --reference."""
    model = folder / "bl" / "char_svm"
    texts, labels = topic_texts(300, 5, new_share=0.3)
    texts[3] = ""
    source = write_csv(tmp_path / "in.csv", texts, labels)
    logs = tmp_path / "logs"
    rc, _, err = run_main(capsys, "predict", "--model", str(model), "--input", str(source), "--output",
                          str(tmp_path / "out.csv"), "--log-predictions", str(logs))
    assert rc == 0, err
    files = list(logs.glob("predictions-*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text("utf-8").splitlines()]
    assert len(records) == 299 and all(len(r["text_sha256"]) == 64 and "text" not in r for r in records)
    assert {"time", "model", "model_version", "label", "prob", "ood", "abstained", "chars", "script"} <= set(records[0])
    rc, _, err = run_main(capsys, "predict", "--model", str(model), "--text", "这个银行股票", "--log-predictions",
                          str(tmp_path / "logs2"), "--log-text", "text")
    assert rc == 0, err
    logged = json.loads(next((tmp_path / "logs2").glob("*.jsonl")).read_text("utf-8"))
    assert logged["text"] == "这个银行股票" and logged["label"] == "财经"

    rc, printed, err = run_main(capsys, "drift", "--model", str(model), "--data", str(logs), "--out",
                                str(tmp_path / "d"))
    assert rc == 1 and "DRIFT" in printed, printed + err

    old = tmp_path / "old"
    import shutil

    shutil.copytree(model, old)
    (old / "reference.json").unlink()  # a folder from before drift references
    rc, _, err = run_main(capsys, "drift", "--model", str(old), "--data", str(source))
    assert rc == 2 and "keeps no drift reference" in err and "--reference FILE" in err
    rc, printed, err = run_main(capsys, "drift", "--model", str(old), "--data", str(folder / "dev.csv"),
                                "--reference", str(folder / "dev.csv"), "--out", str(tmp_path / "d_old"))
    assert rc == 0 and "unknown_chars" not in printed, printed + err  # no training characters: no such signal


def test_the_log_rotates_and_skips_a_torn_last_line(tmp_path) -> None:
    from cls_app.inference.prediction_log import LogSettings, PredictionLog, read_log

    log = PredictionLog(tmp_path, LogSettings(log_max_mb=0.001))  # a new file after about 1 kB
    for i in range(40):
        log.write([{"i": i, "pad": "x" * 40}])
    log.close()
    files = sorted(tmp_path.glob("predictions-*.jsonl"))
    assert len(files) >= 2 and all(f.stat().st_size <= 1100 for f in files)
    with open(files[-1], "a", encoding="utf-8") as fh:
        fh.write('{"i": 99, "pa')  # killed mid-write
    assert sorted(r["i"] for r in read_log(tmp_path)) == list(range(40))


def test_drift_false_alarms_and_power_on_simulated_batches() -> None:
    """On batches drawn like the reference the verdict is a false alarm in about alpha of them; a tenth of the
    texts far out in the out-of-domain tail is found nearly always."""
    from cls_app.evaluation.drift import compare
    from cls_app.models.reference import Reference, WindowStats

    rng = np.random.default_rng(0)

    def stats(n: int, shifted: float = 0.0) -> WindowStats:
        ood = rng.gamma(2.0, 0.25, n)
        far = rng.random(n) < shifted
        ood[far] += 2.0
        labels = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
        return WindowStats(list(ood), {k: int((labels == k).sum()) for k in "abc"}, list(rng.integers(5, 30, n)),
                           {"simplified": n}, int(rng.binomial(n, 0.02)), n)

    reference = Reference(stats(1000), chars="abc", labels=["a", "b", "c"])
    alarms = sum(compare(reference, stats(1000)).drift for _ in range(200))
    found = sum(compare(reference, stats(1000, 0.1)).drift for _ in range(100))
    assert alarms <= 20 and found >= 95  # 5 % of 200 is 10; 95 % of 100
    assert compare(reference, stats(50)).reason == "50 texts; a verdict needs at least 100"


@pytest.mark.slow
def test_metrics_and_drift_on_a_real_server(folder, tmp_path) -> None:
    """A real uvicorn on a loopback port: /metrics in Prometheus' text format counts requests, texts, labels and
    the drift window's verdict; /info shows the monitoring; the log gets a record per text."""
    from prometheus_client.parser import text_string_to_metric_families

    from cls_app.service.app import create_app
    from cls_app.service.server import load_model
    from cls_app.service.settings import ServeSettings

    from .conftest import HTTP, app_server

    settings = ServeSettings(max_wait_ms=0, drift_window=300, log_predictions=str(tmp_path / "logs"),
                             model_process=False)
    app = create_app(load_model(folder / "bl" / "char_svm", settings), settings)
    with app_server(app) as url:
        texts, _ = topic_texts(300, 6, new_share=0.3)
        for i in range(0, 300, 50):
            assert HTTP.post(url + "/predict", json={"texts": texts[i: i + 50]}).status_code == 200
        assert HTTP.post(url + "/predict", json={"texts": "not a list"}).status_code == 422
        assert HTTP.get(url + "/nowhere").status_code == 404
        body = HTTP.get(url + "/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(body)}
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}

        def value(name: str, **labels: str) -> float:
            return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())

        assert value("cls_texts_total") == 300
        assert value("cls_predictions_total", label="体育") + value("cls_predictions_total", label="财经") == 300
        assert value("cls_requests_total", endpoint="/predict", code="200") == 6
        assert value("cls_requests_total", endpoint="/predict", code="422") == 1
        assert value("cls_requests_total", endpoint="other", code="404") == 1
        assert value("cls_batch_texts_count") >= 6 and value("cls_ood_score_count") == 300
        assert value("cls_drift", signal="unknown_chars") == 1 and value("cls_drift_window_texts") == 300
        assert all(dict(ls).get("model") == "char_svm" and dict(ls).get("version") for (n, ls) in samples
                   if n.startswith("cls_texts"))
        info = HTTP.get(url + "/info").json()["monitoring"]
        assert info["drift"]["drift"] and info["window_texts"] == 300 and len(info["model_version"]) == 12
    records = [line for f in (tmp_path / "logs").glob("*.jsonl") for line in f.read_text("utf-8").splitlines()]
    assert len(records) == 300
