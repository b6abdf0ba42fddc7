"""The HTTP prediction service behind ``run.py serve``: FastAPI app, micro-batcher, uvicorn runner."""

from ..lazy import lazy_exports

_EXPORTS = {
    "API_KEY_ENV": "settings",
    "BatchStats": "batcher",
    "MicroBatcher": "batcher",
    "ModelProcess": "model_process",
    "ServeSettings": "settings",
    "create_app": "app",
    "serve": "server",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
