"""The Label Studio ML backend protocol, so a Label Studio project can pre-annotate with a served model.

Label Studio calls an ML backend at a URL it is given; point it at ``http://HOST:PORT/label-studio``
and it finds (label-studio-ml-backend's ``api.py``):

* ``GET /health`` (and ``GET /``): ``{"status": "UP", "model_class": ..., "model_version": ...}``;
* ``POST /setup`` (``{"project", "schema", ...}``): ``{"model_version": ...}``;
* ``POST /predict`` (``{"tasks": [{"id", "data": {...}}], "label_config": ...}``):
  ``{"results": [{"result": [choices], "score", "model_version"}, ...]}``, one per task, in order;
* ``POST /webhook``: acknowledged (the model does not train from Label Studio's events).

The text is the task's ``data`` field named by the label config's ``<Text value="$field">`` (else
``text``, else its first string); the ``Choices`` control's ``name`` / ``toName`` come from the
config (else ``label`` / ``text``). A text the model abstains on gets an empty result (no
pre-annotation) with its score. The same ``--api-key`` rule as ``/predict`` applies.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..models.base import Outputs, TextClassifier
from ..version import __version__

PREFIX = "/label-studio"


def config_names(config: str | None) -> tuple[str, str, str]:
    """(data field, Choices name, Choices toName) of a label config (defaults: text, label, text)."""
    field, name, to = "text", "label", "text"
    if config:
        text = re.search(r"<Text\b[^>]*\bvalue=\"\$([^\"]+)\"", config)
        choices = re.search(r"<Choices\b[^>]*>", config)
        if text:
            field = text.group(1)
        if choices:
            found_name = re.search(r"\bname=\"([^\"]+)\"", choices.group(0))
            found_to = re.search(r"\btoName=\"([^\"]+)\"", choices.group(0))
            name = found_name.group(1) if found_name else name
            to = found_to.group(1) if found_to else to
    return field, name, to


def task_text(task: Any, field: str) -> str:
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict):
        return ""
    value = data.get(field, data.get("text"))
    if not isinstance(value, str):
        value = next((v for v in data.values() if isinstance(v, str)), "")
    return value


def router(model: TextClassifier, score: Callable[[list[str]], Awaitable[Outputs]], auth: list[Any]) -> APIRouter:
    """The routes, answering with ``model`` through ``score`` (the service's micro-batcher)."""
    api = APIRouter(prefix=PREFIX, tags=["Label Studio ML backend"])
    version = f"cls_app-{__version__}:{model.kind}:{model.path.name if model.path else 'model'}"
    labels = list(model.labels)

    @api.get("/health", summary="Label Studio's health check")
    @api.get("/", summary="Label Studio's health check", include_in_schema=False)
    async def health() -> dict:
        return {"status": "UP", "model_class": "cls_app", "model_version": version}

    @api.post("/setup", dependencies=auth, summary="Label Studio connects a project")
    async def setup(request: Request) -> dict:
        await _body(request)
        return {"model_version": version}

    @api.post("/webhook", dependencies=auth, summary="Label Studio's events (acknowledged)")
    async def webhook(request: Request) -> dict:
        await _body(request)
        return {"status": "ok"}

    @api.post("/predict", dependencies=auth, summary="pre-annotations for Label Studio tasks",
              response_class=JSONResponse)
    async def predict(request: Request) -> JSONResponse:
        body = await _body(request)
        tasks = body.get("tasks") if isinstance(body, dict) else None
        if not isinstance(tasks, list):
            return JSONResponse({"error": {"code": "bad_request", "message": "expected {\"tasks\": [...]}"}},
                                status_code=422)
        field, name, to = config_names(body.get("label_config"))
        texts = [task_text(t, field) for t in tasks]
        keep = [i for i, t in enumerate(texts) if t.strip()]
        results: list[dict] = [{"result": [], "score": 0.0, "model_version": version} for _ in tasks]
        if keep:
            outputs = await score([texts[i] for i in keep])
            abstention = model.abstention(outputs)
            items = model.task.service_items(outputs.probs, labels, 1, abstention)
            for i, item in zip(keep, items, strict=True):
                choices = item["labels"] if "labels" in item else [item["label"]]
                prob = float(item["prob"]) if "prob" in item else max((p["prob"] for p in item["probs"]), default=0.0)
                result = [] if item["abstained"] else [{"from_name": name, "to_name": to, "type": "choices",
                                                        "value": {"choices": list(choices)}}]
                results[i] = {"result": result, "score": round(prob, 6), "model_version": version}
        return JSONResponse({"results": results})

    return api


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return {}


__all__ = ["PREFIX", "config_names", "router"]
