"""Run the prediction service under uvicorn: one process, or ``--workers N`` processes.

One worker loads the model in this process and serves it. Several workers are separate
processes started by uvicorn; each rebuilds the app from :data:`CONFIG_ENV` (the model folder
and the settings as JSON; the API key travels in :data:`~cls_app.service.settings.API_KEY_ENV`,
never in the JSON) with its own model copy and its own micro-batcher.

Shutdown: on SIGTERM or Ctrl-C uvicorn stops accepting connections, lets the requests in
flight finish (up to ``shutdown_timeout_s``), then the batcher finishes its queue and stops.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..models.base import TextClassifier
from .app import create_app
from .model_process import ModelProcess
from .settings import API_KEY_ENV, ServeSettings

log = logging.getLogger(__name__)

CONFIG_ENV = "CLS_APP_SERVE_CONFIG"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def load_model(model: str | Path, settings: ServeSettings) -> TextClassifier:
    """The model of any folder, loaded as the CLI and the API load it, with the service's settings
    (a folder holding ``best.json``: the model it recommends, unless ``settings.follow`` is off)."""
    from ..models.base import load
    from ..runtime.cores import default_threads

    threads = settings.threads or default_threads(settings.workers)  # the cores split among the workers
    return load(model, follow=settings.follow, prefer=settings.prefer, batch_size=settings.batch_size, threads=threads,
                backend=settings.backend, quantize=settings.quantize, precision=settings.precision,
                script=settings.script, abstain=settings.abstain)


def build_app(model: str | Path, settings: ServeSettings) -> Any:
    """The app for ``model``; with ``settings.model_process`` the batches run in a model process (started
    first, so that it loads the model while this process loads its own copy)."""
    worker = ModelProcess(load_model, (str(Path(model).resolve()), settings)) if settings.model_process else None
    if worker is not None:
        worker.start()
    try:
        predictor = load_model(model, settings)
    except BaseException:
        if worker is not None:
            worker.shutdown(wait=False, cancel_futures=True)
        raise
    return create_app(predictor, settings, worker)


def app_from_environment() -> Any:
    """The app factory each ``--workers`` process calls (uvicorn ``factory=True``)."""
    config = json.loads(os.environ[CONFIG_ENV])
    settings = ServeSettings.from_dict(config["settings"]).resolved_key()
    return build_app(config["model"], settings)


def check_port_free(host: str, port: int) -> None:
    """A clear UserError now rather than a uvicorn traceback after the model has loaded."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is in use: stop the other server or pick --port") from None
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; let that end ``serve`` normally."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(model: str | Path, settings: ServeSettings, announce: Callable[[str], None] | None = None) -> None:
    """Serve ``model`` until SIGTERM/SIGINT (blocks); ``announce(url)`` once the model has loaded."""
    import uvicorn

    problems = settings.check()
    if problems:
        raise UserError(problems[0])
    settings = settings.resolved_key()
    check_port_free(settings.host, settings.port)
    if settings.host not in LOOPBACK:
        log.warning("listening on %s: reachable from other machines%s", settings.host,
                    "" if settings.api_key else "; consider --api-key")
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_config": None,
                              "access_log": settings.access_log,
                              "timeout_graceful_shutdown": settings.shutdown_timeout_s}
    url = f"http://{settings.host}:{settings.port}"
    if settings.workers == 1:
        app = build_app(model, settings)
        if announce:
            announce(url)
        with _signals_end_quietly():
            uvicorn.run(app, **common)
        return
    del_me = load_model(model, settings)  # fail here, once, with a clear error, rather than in every worker
    del del_me
    if announce:
        announce(url)
    public = {k: v for k, v in asdict(settings).items() if k != "api_key"}
    os.environ[CONFIG_ENV] = json.dumps({"model": str(Path(model).resolve()), "settings": public})
    if settings.api_key:
        os.environ[API_KEY_ENV] = settings.api_key
    with _signals_end_quietly(), _shared_metrics(settings.metrics):
        uvicorn.run("cls_app.service.server:app_from_environment", factory=True, workers=settings.workers, **common)


@contextlib.contextmanager
def _shared_metrics(enabled: bool) -> Iterator[None]:
    """With several workers: prometheus-client's multiprocess mode in a folder of this run (the workers inherit
    its name), removed at the end; a folder the user named in the environment is used as it is."""
    import shutil
    import tempfile

    from .monitor import MULTIPROC_ENV

    if not enabled or os.environ.get(MULTIPROC_ENV):
        yield
        return
    folder = tempfile.mkdtemp(prefix="cls-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)
