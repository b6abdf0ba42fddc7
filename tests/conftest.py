"""Shared fixtures: a separable toy task, tiny model settings, the ../shared data."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_THUCNEWS = ROOT.parent / "shared" / "data" / "thucnews"

POS_CHARS = "好棒赞喜爱优美快乐满意推荐"
NEG_CHARS = "差烂坏慢贵糟差劲失望退货"


def toy_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """A separable two-class toy task: texts built from disjoint character sets."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = "正面" if i % 2 == 0 else "负面"
        chars = POS_CHARS if label == "正面" else NEG_CHARS
        body = "".join(rng.choice(chars) for _ in range(rng.randint(3, 12)))
        texts.append("这个" + body)
        labels.append(label)
    return texts, labels


def write_csv(path: Path, texts: list[str], labels: list[str]) -> Path:
    import pandas as pd

    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def noisy_files(folder: Path) -> dict[str, Path]:
    """train/dev/test CSVs of the toy task with 15 % of the labels flipped, so that models differ and dev has
    150 rows (enough for an ensemble to fit its weights)."""
    files = {}
    for split, n, seed in (("train", 300, 1), ("dev", 150, 2), ("test", 120, 3)):
        texts, labels = toy_texts(n, seed)
        rng = random.Random(seed)
        labels = [("负面" if x == "正面" else "正面") if rng.random() < 0.15 else x for x in labels]
        files[split] = write_csv(folder / f"{split}.csv", texts, labels)
    return files


@pytest.fixture
def toy_files(tmp_path: Path) -> dict[str, Path]:
    """train/dev/test CSVs of the toy task."""
    files = {}
    for split, n, seed in (("train", 240, 1), ("dev", 60, 2), ("test", 60, 3)):
        files[split] = write_csv(tmp_path / f"{split}.csv", *toy_texts(n, seed))
    return files


def train_toy_bert(folder: Path, *, n_train: int, n_dev: int = 40, layers: int = 1, max_len: int = 32,
                   epochs: int) -> Path:
    """A tiny BERT (hidden 32, 2 heads) trained on the toy task in ``folder``; returns ``folder/model``.

    Fitted from in-memory lists (``TextClassifier.fit``); the CSVs are written beside it for tests that read them.
    """
    from cls_app import TextClassifier

    train, dev = toy_texts(n_train, 1), toy_texts(n_dev, 2)
    write_csv(folder / "train.csv", *train)
    write_csv(folder / "dev.csv", *dev)
    clf = TextClassifier(kind="bert", layers=layers, hidden=32, heads=2, min_freq=1, max_len=max_len, epochs=epochs,
                         batch_size=16, lr=2e-3, seed=0)
    clf.fit(*train, dev=dev)
    return clf.save(folder / "model")


@pytest.fixture(scope="session")
def toy_bert(tmp_path_factory) -> Path:
    """The tiny BERT most tests share, trained once per test run (per worker with pytest-xdist): 2 layers,
    hidden 32, max_len 64, 5 epochs on 240 toy texts (confident, so labels are stable). Read-only: a test
    that writes into a model folder works on a copy (:func:`copy_model`)."""
    return train_toy_bert(tmp_path_factory.mktemp("toy_bert"), n_train=240, n_dev=60, layers=2, max_len=64, epochs=5)


def copy_model(folder: Path, where: Path) -> Path:
    """A copy of a model folder to write into."""
    import shutil

    return Path(shutil.copytree(folder, where / folder.name))


@pytest.fixture
def thucnews_dir() -> Path:
    if not (SHARED_THUCNEWS / "dev.txt").is_file():
        pytest.skip("../shared/data/thucnews is not present")
    return SHARED_THUCNEWS


TINY_MODEL_ARGS = ["--layers", "1", "--hidden", "32", "--heads", "2", "--min-freq", "1"]


def run_cli(*args: str, cwd: Path = ROOT, stdin: str | None = None, timeout: int = 300):
    """Run ``python run.py ARGS`` as a subprocess; return the CompletedProcess."""
    import subprocess

    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True, text=True,
        input=stdin, timeout=timeout,
    )


def run_captured(*args: str) -> tuple[int, str, str]:
    """:func:`run_main` for fixtures wider than one test (no ``capsys``): stdout and stderr captured here."""
    import contextlib
    import io

    import torch

    from cls_app.commands import main

    threads = torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
    finally:
        torch.set_num_threads(threads)
    return rc, out.getvalue(), err.getvalue()


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (no interpreter start-up); return (exit status, stdout, stderr).

    Restores torch's thread count, which ``--threads`` changes for the whole process.
    """
    import torch

    from cls_app.commands import main

    threads = torch.get_num_threads()
    capsys.readouterr()
    try:
        rc = main(list(args))
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- a real server

try:
    import httpx

    # one client for every test: each top-level httpx call builds a TLS context (tens of ms) even for
    # http://; no kept-alive connections, so every request opens its own as top-level calls do
    HTTP = httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))
except ImportError:  # pragma: no cover - httpx is in requirements.txt
    HTTP = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(app: Any) -> Iterator[str]:
    """A FastAPI ``app`` served by a real uvicorn on a free loopback port in a thread of this process (no model
    process, no subprocess); yields its base URL, once it has started; stopped on exit."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Server:
    """``python run.py serve ...`` in a subprocess; ``stop()`` sends SIGTERM and returns the exit status."""

    def __init__(self, model: Path, *flags: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, str(ROOT / "run.py"), "serve", "--model", str(model), "--port", str(self.port),
               "--threads", "1", *flags]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if HTTP.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.proc.kill()
        raise AssertionError("server did not answer /health within 120 s")

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err
