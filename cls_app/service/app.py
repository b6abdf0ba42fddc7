"""The HTTP prediction service: a FastAPI app around any model folder's predictor.

Endpoints (``/docs`` has the OpenAPI page):

* ``POST /predict`` with ``{"texts": [...]}`` or ``{"text": "..."}`` and optional ``"top_k"``:
  ``{"predictions": [{"label", "prob", "top": [{"label", "prob"}, ...]} | {"error": {...}}, ...]}``,
  one entry per text in order; an empty text gets a per-item error, the others are answered.
  Label-set models answer ``{"labels": [...], "probs": [{"label", "prob"}, ...]}`` per text.
* ``GET /health``: ``{"status": "ok"}``; ``GET /info``: labels, kind, task, settings, version,
  micro-batching counters and the monitoring (the model's version, the drift verdict on the last texts).
* ``GET /metrics``: Prometheus metrics (:mod:`.monitor`; ``--no-metrics``: 404).

Every error is JSON ``{"error": {"code": ..., "message": ...}}``: 401 (API key), 404/405, 413
(body too large), 422 (malformed JSON, wrong fields, too many texts, a text too long), 500
(the model failed on a batch; the server stays up), 503 (shutting down).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..models.base import TextClassifier
from ..version import __version__
from .batcher import BatcherClosed, MicroBatcher
from .label_studio import router as label_studio_router
from .model_process import predict_in_worker
from .monitor import Monitor
from .settings import ServeSettings

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", ...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, **self.extra}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class PredictRequest(BaseModel):
    """``{"texts": [...]}`` or ``{"text": "..."}``; ``top_k`` best labels per text (default 1)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": ["詹姆斯退役", "油价上涨"],
                                                                               "top_k": 2}]})
    texts: list[str] | None = Field(None, description="texts to classify, answered in this order")
    text: str | None = Field(None, description="one text (instead of texts)")
    top_k: int = Field(1, ge=1, description="how many of the most likely labels to list per text")

    @model_validator(mode="after")
    def _one_source(self) -> PredictRequest:
        if (self.texts is None) == (self.text is None):
            raise ValueError("give either 'texts' (a list of strings) or 'text' (one string), not both or neither")
        return self

    def all_texts(self) -> list[str]:
        return self.texts if self.texts is not None else [self.text or ""]


def check_limits(texts: Sequence[str], settings: ServeSettings) -> None:
    """422 naming the limit when a request has too many texts or a text is too long."""
    if len(texts) > settings.max_texts:
        raise ApiError(422, "too_many_texts", f"{len(texts)} texts in one request; the limit is "
                       f"{settings.max_texts} (--max-texts): send them in several requests",
                       limit=settings.max_texts)
    for i, text in enumerate(texts):
        if len(text) > settings.max_chars:
            raise ApiError(422, "text_too_long", f"texts[{i}] has {len(text)} characters; the limit is "
                           f"{settings.max_chars} (--max-chars)", limit=settings.max_chars, index=i)


def _key_checker(settings: ServeSettings):
    """A dependency answering 401 unless the request carries ``Authorization: Bearer KEY``."""
    expected = (settings.api_key or "").encode()

    async def require_key(request: Request) -> None:
        if not expected:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(401, "unauthorized", "missing or wrong API key: send 'Authorization: Bearer KEY'",
                           headers={"WWW-Authenticate": "Bearer"})

    return require_key


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    """(code, one-line message) for a request that failed parsing or validation."""
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return "malformed_json", f"the body is not valid JSON ({ctx.get('error', 'parse error')})"
    if len(errors) == 1 and errors[0].get("loc") == ("body",) and errors[0].get("type") != "value_error":
        return "invalid_request", ('the body must be a JSON object such as {"texts": ["..."]}, sent with '
                                   "Content-Type: application/json")
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid_request", "; ".join(parts) + more


def _install_error_handlers(app: FastAPI, settings: ServeSettings) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = _validation_message(exc)
        return ApiError(422, code, message).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 413:
            return _too_large(settings.max_body_bytes).response()
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        return ApiError(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                        headers=getattr(exc, "headers", None)).response()


def _install_routes(app: FastAPI, model: TextClassifier, settings: ServeSettings, batcher: MicroBatcher,
                    monitor: Monitor) -> None:
    auth = [Depends(_key_checker(settings))]
    labels = list(model.labels)

    if settings.metrics:
        @app.get("/metrics", summary="Prometheus metrics (docs/monitoring.md)", include_in_schema=False)
        async def metrics() -> Response:
            body, content_type = await asyncio.get_running_loop().run_in_executor(None, monitor.exposition)
            return Response(body, media_type=content_type)

    @app.get("/health", summary="liveness: 200 while the server is up")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/info", dependencies=auth, summary="model, settings, version and batching counters")
    async def info() -> dict:
        return {
            "version": __version__, "pid": os.getpid(), "kind": model.family, "model_kind": model.kind,
            "task": model.task.name, "labels": labels, "model": str(model.path or ""),
            "model_settings": model.describe(), "settings": settings.public(), "batching": batcher.stats.as_dict(),
            "monitoring": await asyncio.get_running_loop().run_in_executor(None, monitor.info),
        }

    # the answer is built here as plain JSON types and returned as a JSONResponse: FastAPI's
    # response-model validation and jsonable_encoder would walk every item again
    @app.post("/predict", dependencies=auth, summary="classify texts", response_class=JSONResponse)
    async def predict(body: PredictRequest) -> JSONResponse:
        texts = body.all_texts()
        check_limits(texts, settings)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        results: list[dict] = [{"error": {"code": "empty_text", "message": f"texts[{i}] is empty"}}
                               for i in range(len(texts))]
        if keep:
            try:
                scored = await batcher.submit([texts[i] for i in keep])
            except BatcherClosed:
                raise ApiError(503, "shutting_down", "the server is shutting down; retry elsewhere") from None
            except Exception:
                raise ApiError(500, "prediction_failed", "the model failed on this batch (see the server log)",
                               ) from None
            abstention = model.abstention(scored)
            items = model.task.service_items(scored.probs, labels, body.top_k, abstention)
            for i, item in zip(keep, items, strict=True):
                results[i] = item
            monitor.observe([texts[i] for i in keep], scored, abstention)
        return JSONResponse({"predictions": results})


def create_app(model: TextClassifier, settings: ServeSettings | None = None, model_process: Executor | None = None
               ) -> FastAPI:
    """The FastAPI app serving ``model`` (any :class:`~cls_app.models.TextClassifier`).

    With ``model_process`` (a :class:`~.model_process.ModelProcess` that loads the same model) the
    batches run there and ``model`` only describes the model (labels, task, ``/info``)."""
    settings = settings or ServeSettings()
    run_batch: Any = model.score if model_process is None else predict_in_worker
    monitor = Monitor(model, settings.metrics, settings.drift_window, settings.log_settings)
    batcher = MicroBatcher(run_batch, settings.max_batch, settings.max_wait_ms, executor=model_process,
                           on_batch=monitor.batch)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        log.info("serving %s model %s (version %s): %d labels", model.kind, model.path or "", monitor.version,
                 len(model.labels))
        yield
        await batcher.close(settings.shutdown_timeout_s)
        monitor.close()

    app = FastAPI(title="cls_app prediction service", version=__version__, lifespan=lifespan,
                  description="Chinese text classification (BERT or TF-IDF baseline) with dynamic micro-batching.")
    app.state.batcher, app.state.monitor = batcher, monitor
    _install_error_handlers(app, settings)
    _install_routes(app, model, settings, batcher, monitor)
    app.include_router(label_studio_router(model, batcher.submit, [Depends(_key_checker(settings))]))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.metrics:
        routes = {getattr(r, "path", "") for r in app.routes}
        app.add_middleware(RequestMetrics, monitor=monitor, routes=routes)
    return app


class RequestMetrics:
    """ASGI middleware: every HTTP request's route (``other`` for unknown paths), status code and latency."""

    def __init__(self, app: Any, monitor: Monitor, routes: set[str]) -> None:
        self.app, self.monitor, self.routes = app, monitor, routes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sent(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            path = scope.get("path", "")
            self.monitor.request(path if path in self.routes else "other", status[0], time.perf_counter() - start)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is over {limit} bytes (--max-body-bytes): "
                    "send fewer or shorter texts per request", limit=limit)


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, by Content-Length or counted as it streams in."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await _too_large(self.max_bytes).response()(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # raised inside the body parsing: the app answers 413
                raise HTTPException(413, "body too large")
            return message

        await self.app(scope, counted, send)
