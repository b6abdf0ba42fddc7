"""``run.py serve``: the real server in a subprocess on a free loopback port, called over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import HTTP, Server, app_server, run_main, toy_texts, write_csv

KEY = "s3cret-key"
LIMITS = ["--max-texts", "8", "--max-chars", "60", "--max-body-bytes", "1000"]


@pytest.fixture(scope="module")
def bert_model(toy_bert) -> Path:
    return toy_bert


@pytest.fixture(scope="module")
def baseline_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serve_baseline")
    train = write_csv(folder / "train.csv", *toy_texts(200, 1))
    dev = write_csv(folder / "dev.csv", *toy_texts(40, 2))
    from cls_app.commands import main

    assert main(["-q", "baseline", "--train", str(train), "--dev", str(dev), "--out", str(folder / "bl"),
                 "--models", "char_lr"]) == 0
    return folder / "bl" / "char_lr"


@pytest.fixture(scope="module")
def bert_server(bert_model):
    server = Server(bert_model, "--api-key", KEY, "--max-wait-ms", "150", *LIMITS)
    yield server
    status, _, err = server.stop()
    assert status == 0, err[-2000:]


def auth(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.slow
def test_predictions_match_the_python_api(bert_server, bert_model) -> None:
    from cls_app import Classifier

    texts, labels = toy_texts(6, seed=9)
    r = HTTP.post(bert_server.url + "/predict", json={"texts": texts, "top_k": 2}, headers=auth())
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    want = Classifier.load(bert_model, threads=1).predict(texts, top_k=2)
    assert [g["label"] for g in got] == [w.label for w in want] == labels
    for g, w in zip(got, want, strict=True):
        assert abs(g["prob"] - w.prob) < 1e-5
        assert [t["label"] for t in g["top"]] == [label for label, _ in w.top]
    one = HTTP.post(bert_server.url + "/predict", json={"text": texts[0]}, headers=auth()).json()
    assert one["predictions"][0]["label"] == labels[0] and len(one["predictions"][0]["top"]) == 1

    info = HTTP.get(bert_server.url + "/info", headers=auth()).json()
    assert info["kind"] == "bert" and set(info["labels"]) == set(labels)
    assert info["settings"]["max_texts"] == 8 and info["settings"]["api_key"] is True
    assert KEY not in r.text + str(info)
    assert info["model_settings"]["max_len"] == 64
    assert info["model_settings"]["precision"] == "fp32"  # the default
    docs = HTTP.get(bert_server.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.mark.slow
def test_every_error_is_clear_json_and_the_server_stays_up(bert_server) -> None:
    url = bert_server.url

    def error(r: httpx.Response, status: int, code: str) -> dict:
        assert r.status_code == status, (r.status_code, r.text)
        body = r.json()["error"]
        assert body["code"] == code and body["message"]
        return body

    error(HTTP.post(url + "/predict", json={"texts": ["a"]}), 401, "unauthorized")
    error(HTTP.post(url + "/predict", json={"texts": ["a"]}, headers=auth("wrong")), 401, "unauthorized")
    error(HTTP.get(url + "/info"), 401, "unauthorized")
    body = error(HTTP.post(url + "/predict", json={"texts": ["好"] * 9}, headers=auth()), 422, "too_many_texts")
    assert body["limit"] == 8 and "--max-texts" in body["message"]
    body = error(HTTP.post(url + "/predict", json={"texts": ["好", "好" * 61]}, headers=auth()), 422, "text_too_long")
    assert body["limit"] == 60 and body["index"] == 1
    big = {"texts": ["好" * 55] * 8}  # within the text limits, over 1000 bytes
    body = error(HTTP.post(url + "/predict", json=big, headers=auth()), 413, "body_too_large")
    assert body["limit"] == 1000

    def stream():  # no Content-Length: counted as it arrives
        yield b'{"texts": ["'
        for _ in range(50):
            yield b"a" * 100
        yield b'"]}'

    error(HTTP.post(url + "/predict", content=stream(), headers={**auth(), "content-type": "application/json"}),
          413, "body_too_large")
    error(HTTP.post(url + "/predict", content=b'{"texts": [', headers={**auth(), "content-type": "application/json"}),
          422, "malformed_json")
    body = error(HTTP.post(url + "/predict", json={"texts": ["好", 3]}, headers=auth()), 422, "invalid_request")
    assert "texts.1" in body["message"]
    error(HTTP.post(url + "/predict", json={"texts": ["好"], "text": "好"}, headers=auth()), 422, "invalid_request")
    error(HTTP.post(url + "/predict", json={"texts": ["好"], "top_k": 0}, headers=auth()), 422, "invalid_request")
    error(HTTP.post(url + "/predict", json=["好"], headers=auth()), 422, "invalid_request")
    error(HTTP.get(url + "/nowhere"), 404, "not_found")
    error(HTTP.get(url + "/predict", headers=auth()), 405, "method_not_allowed")

    # an empty text is a per-item error; the others are answered
    r = HTTP.post(url + "/predict", json={"texts": ["这个好棒", "  ", "这个差劲"]}, headers=auth())
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert preds[1]["error"]["code"] == "empty_text" and "texts[1]" in preds[1]["error"]["message"]
    assert [preds[0]["label"], preds[2]["label"]] == ["正面", "负面"]
    assert HTTP.get(url + "/health").json() == {"status": "ok"}


@pytest.mark.slow
def test_concurrent_requests_are_micro_batched(bert_server) -> None:
    url = bert_server.url
    before = HTTP.get(url + "/info", headers=auth()).json()["batching"]
    texts, _ = toy_texts(16, seed=5)
    alone = [HTTP.post(url + "/predict", json={"text": t}, headers=auth()).json()["predictions"][0] for t in texts]

    async def together() -> list[dict]:
        async with httpx.AsyncClient(base_url=url, headers=auth(), timeout=60) as client:
            rs = await asyncio.gather(*(client.post("/predict", json={"text": t}) for t in texts))
        return [r.json()["predictions"][0] for r in rs]

    mid = HTTP.get(url + "/info", headers=auth()).json()["batching"]
    grouped = asyncio.run(together())
    after = HTTP.get(url + "/info", headers=auth()).json()["batching"]
    assert mid["batches"] - before["batches"] == 16  # one by one: one batch each
    assert after["requests"] - mid["requests"] == 16
    assert after["batches"] - mid["batches"] <= 4, after  # 16 concurrent requests ran in a few batches
    assert after["largest_batch"] >= 4
    for a, g in zip(alone, grouped, strict=True):  # and each got its own answer
        assert a["label"] == g["label"] and abs(a["prob"] - g["prob"]) < 1e-5


@pytest.mark.slow
def test_baseline_folder_two_workers_env_key_and_graceful_shutdown(baseline_model) -> None:
    server = Server(baseline_model, "--max-wait-ms", "1500", "--workers", "2", "--no-model-process",
                    env={"CLS_APP_API_KEY": "from-env"})
    try:
        assert HTTP.post(server.url + "/predict", json={"text": "好"}).status_code == 401
        info = HTTP.get(server.url + "/info", headers=auth("from-env")).json()
        assert info["kind"] == "baseline" and set(info["labels"]) == {"正面", "负面"}
        assert info["settings"]["workers"] == 2 and info["pid"] != server.proc.pid  # answered by a worker
        answer: dict = {}

        def slow_request() -> None:  # waits 1.5 s in the batcher: in flight when SIGTERM comes
            r = HTTP.post(server.url + "/predict", json={"texts": ["这个好棒好棒", "这个差劲差劲"]},
                           headers=auth("from-env"), timeout=60)
            answer["status"], answer["body"] = r.status_code, r.json()

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        thread.join(timeout=60)
    finally:
        status, _, err = server.stop()
    assert answer["status"] == 200, answer
    assert [p["label"] for p in answer["body"]["predictions"]] == ["正面", "负面"]
    assert status == 0, err[-2000:]


def test_serve_command_errors(tmp_path, bert_model, capsys) -> None:
    """Mistakes fail before the server starts: one error line, status 2 (in-process: no server runs)."""
    rc, _, err = run_main(capsys, "serve", "--model", str(tmp_path / "missing"), "--port", "0")
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error: model folder not found")
    rc, _, err = run_main(capsys, "serve", "--model", str(bert_model), "--max-batch", "0")
    assert rc == 2 and "--max-batch must be at least 1" in err
    rc, _, err = run_main(capsys, "serve", "--model", str(bert_model), "--api-key", " ")
    assert rc == 2 and "--api-key is empty" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        rc, _, err = run_main(capsys, "serve", "--model", str(bert_model), "--port", str(busy.getsockname()[1]))
    assert rc == 2 and "is in use" in err, err
    assert "Traceback" not in err


def test_batcher_keeps_order_and_never_splits_a_request() -> None:
    """The micro-batcher alone: requests cut at --max-batch texts, each answer is its own rows."""
    from cls_app.service.batcher import MicroBatcher

    calls: list[int] = []

    def proba(texts):
        calls.append(len(texts))
        return np.array([[float(t)] for t in texts])

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(proba, max_batch=5, max_wait_ms=50)
        await batcher.start(warm_up=False)
        sizes = [1, 3, 2, 7, 1]
        start = 0
        jobs = []
        for n in sizes:
            jobs.append(batcher.submit([str(i) for i in range(start, start + n)]))
            start += n
        out = await asyncio.gather(*jobs)
        await batcher.close()
        return out

    out = asyncio.run(main())
    assert [row.ravel().tolist() for row in out] == [[0], [1, 2, 3], [4, 5], list(range(6, 13)), [13]]
    assert calls == [4, 2, 7, 1]  # 1+3 (2 more would pass 5), 2, 7 alone (over the limit), 1


def test_a_model_failure_is_a_500_and_the_server_stays_up() -> None:
    """The app around a predictor that fails on some texts (in-process uvicorn, no model needed)."""

    from cls_app.models.base import TextClassifier
    from cls_app.service.app import create_app
    from cls_app.service.settings import ServeSettings

    class Flaky(TextClassifier):
        def __init__(self) -> None:
            super().__init__("fake")
            self.labels, self.path = ["a", "b"], Path("flaky")

        def scores(self, texts):  # what a model kind implements
            if any("boom" in t for t in texts):
                raise RuntimeError("model exploded")
            return np.tile([0.25, 0.75], (len(texts), 1))

    with app_server(create_app(Flaky(), ServeSettings(max_wait_ms=0))) as url:
        r = HTTP.post(url + "/predict", json={"texts": ["fine", "boom"]})
        assert r.status_code == 500 and r.json()["error"]["code"] == "prediction_failed"
        r = HTTP.post(url + "/predict", json={"text": "fine"})
        assert r.status_code == 200 and r.json()["predictions"][0] == {
            "label": "b", "prob": 0.75, "top": [{"label": "b", "prob": 0.75}], "abstained": False, "reason": None,
            "ood_score": None}


def model_processes(pid: int) -> list[int]:
    """The spawned model processes among ``pid``'s children (not multiprocessing's resource tracker)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    cmdlines = {k: Path(f"/proc/{k}/cmdline").read_bytes() for k in kids if Path(f"/proc/{k}").exists()}
    return [k for k, cmd in cmdlines.items() if b"spawn_main" in cmd and b"resource_tracker" not in cmd]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from Linux /proc")
def test_a_killed_model_process_is_replaced_and_the_server_stays_up(baseline_model) -> None:
    server = Server(baseline_model, "--max-wait-ms", "0")
    try:
        url = server.url + "/predict"
        assert HTTP.post(url, json={"text": "这个好棒好棒"}).json()["predictions"][0]["label"] == "正面"
        before = model_processes(server.proc.pid)
        assert len(before) == 1, before  # the model runs in a process of its own
        os.kill(before[0], signal.SIGKILL)
        statuses = []
        for _ in range(20):  # the batch the dead process had (if any) fails; the next one starts a new process
            r = HTTP.post(url, json={"text": "这个差劲差劲"}, timeout=60)
            statuses.append(r.status_code)
            if r.status_code == 200:
                break
            assert r.status_code == 500 and r.json()["error"]["code"] == "prediction_failed", r.text
        assert statuses[-1] == 200 and len(statuses) <= 2, statuses
        assert r.json()["predictions"][0]["label"] == "负面"
        after = model_processes(server.proc.pid)
        assert len(after) == 1 and after != before
    finally:
        status, _, err = server.stop()
    assert status == 0, err[-2000:]
    assert "the model process died during a batch" in err or statuses == [200], err[-2000:]
    assert "Traceback" not in err, err[-2000:]
