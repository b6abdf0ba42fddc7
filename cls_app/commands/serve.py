"""``run.py serve``: an HTTP prediction service (FastAPI + uvicorn) with dynamic micro-batching."""

from __future__ import annotations

import argparse

from ..errors import UserError
from .options import add_backend_option

NAME = "serve"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..service.settings import API_KEY_ENV, ServeSettings

    d = ServeSettings()
    p = sub.add_parser(
        NAME, help="serve a model folder over HTTP (POST /predict, GET /health, GET /info, /docs)",
        description="Serve any model folder (BERT or baseline) over HTTP. Concurrent requests are micro-batched: "
        "they wait up to --max-wait-ms for others and run together, up to --max-batch texts, sorted by length into "
        "forward passes of --batch-size. "
        "Binds to 127.0.0.1 unless --host says otherwise. See docs/deploy.md.",
    )
    p.add_argument("--model", required=True, help="model folder written by train or baseline")
    p.add_argument("--host", default=d.host, help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=d.port, help="port (default: %(default)s)")
    g = p.add_argument_group("micro-batching")
    g.add_argument("--max-batch", type=int, default=d.max_batch,
                   help="most texts run together (default: %(default)s; 1 turns micro-batching off)")
    g.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms,
                   help="longest a request waits for others to join its batch (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="texts per forward pass (default: %(default)s)")
    lim = p.add_argument_group("limits (answered with JSON errors)")
    lim.add_argument("--max-texts", type=int, default=d.max_texts, help="texts per request (default: %(default)s; 422)")
    lim.add_argument("--max-chars", type=int, default=d.max_chars,
                     help="characters per text (default: %(default)s; 422)")
    lim.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes,
                     help="request body size (default: %(default)s; 413)")
    r = p.add_argument_group("processes and security")
    r.add_argument("--workers", type=int, default=d.workers,
                   help="server processes, each with its own model copy (default: %(default)s)")
    r.add_argument("--model-process", action=argparse.BooleanOptionalAction, default=d.model_process,
                   help="run the model in a process of its own beside each server process, so HTTP handling and "
                   "the model do not share Python's GIL (default: on; --no-model-process keeps one copy of the "
                   "model in memory)")
    r.add_argument("--threads", type=int, help="CPU threads for the model in each worker (default: the thread policy)")
    r.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' on /predict and /info (default: the "
                   f"{API_KEY_ENV} environment variable, if set)")
    r.add_argument("--shutdown-timeout", type=float, default=d.shutdown_timeout_s, metavar="S",
                   help="on SIGTERM/Ctrl-C, seconds in-flight requests get to finish (default: %(default)s)")
    r.add_argument("--quantize", action="store_true", help="BERT: int8 linear layers (with --backend onnx: the "
                   "exported model.int8.onnx); faster on CPU, labels may differ on a few texts")
    r.add_argument("--access-log", action="store_true", help="log every request")
    add_backend_option(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..service.server import serve
    from ..service.settings import ServeSettings

    if args.api_key is not None and not args.api_key.strip():
        raise UserError("--api-key is empty; give a key or leave the flag out")
    settings = ServeSettings(
        host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_texts=args.max_texts, max_chars=args.max_chars, max_body_bytes=args.max_body_bytes,
        workers=args.workers, model_process=args.model_process, threads=args.threads, batch_size=args.batch_size,
        backend=args.backend,
        quantize=args.quantize, api_key=args.api_key, shutdown_timeout_s=args.shutdown_timeout,
        access_log=args.access_log,
    )
    serve(args.model, settings, announce=lambda url: print(
        f"serving {args.model} on {url} (API docs at {url}/docs; Ctrl-C or SIGTERM stops)", flush=True))
    print("server stopped", flush=True)
