"""``run.py serve``: an HTTP prediction service (FastAPI + uvicorn) with dynamic micro-batching."""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..inference.prediction_log import LogSettings
from ..service.settings import ServeSettings
from .flags import add_abstain, add_inference, add_model, add_settings, settings_from

NAME = "serve"
BATCHING = ("max_batch", "max_wait_ms", "batch_size")
LIMITS = ("max_texts", "max_chars", "max_body_bytes")
PROCESSES = ("workers", "model_process", "threads", "api_key", "shutdown_timeout_s")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, help="serve a model folder over HTTP (POST /predict, GET /health, GET /info, /docs)",
        description="Serve any model folder (BERT, baseline or ensemble; a train folder holding best.json: the "
        "model it recommends) over HTTP. Concurrent requests are micro-batched: they wait up to --max-wait-ms for "
        "others and run together, up to --max-batch texts, sorted by length into forward passes of --batch-size. "
        "Binds to 127.0.0.1 unless --host says otherwise. See docs/deploy.md.",
    )
    add_model(p)
    add_settings(p, ServeSettings, only=("host", "port"))
    add_settings(p.add_argument_group("micro-batching"), ServeSettings, only=BATCHING)
    add_settings(p.add_argument_group("limits (answered with JSON errors)"), ServeSettings, only=LIMITS)
    r = p.add_argument_group("processes and security")
    add_settings(r, ServeSettings, only=PROCESSES)
    add_inference(r, only=("quantize",))
    add_settings(r, ServeSettings, only=("access_log",))
    add_inference(p, only=("backend", "precision", "script"))
    add_abstain(p)
    watch = p.add_argument_group("monitoring (docs/monitoring.md)")
    add_settings(watch, ServeSettings, only=("metrics", "drift_window"))
    add_settings(watch, LogSettings)
    return p


def run(args: argparse.Namespace) -> None:
    from ..service.server import serve

    if args.api_key is not None and not args.api_key.strip():
        raise UserError("--api-key is empty; give a key or leave the flag out")
    settings = settings_from(args, ServeSettings)
    serve(args.model, settings, announce=lambda url: print(
        f"serving {args.model} on {url} (API docs at {url}/docs; Ctrl-C or SIGTERM stops)", flush=True))
    print("server stopped", flush=True)
