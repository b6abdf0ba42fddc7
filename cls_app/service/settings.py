"""The service's settings: every default in one place (``run.py serve`` reads these)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

from ..inference.defaults import BACKENDS

API_KEY_ENV = "CLS_APP_API_KEY"
"""Environment variable read for the API key when ``--api-key`` is not given."""


@dataclass
class ServeSettings:
    """How ``run.py serve`` runs; the defaults are the CLI's defaults."""

    host: str = "127.0.0.1"
    """Address to bind; the loopback interface unless told otherwise."""
    port: int = 8000
    max_batch: int = 128
    """Most texts run together in one micro-batch (1: micro-batching off)."""
    max_wait_ms: float = 5.0
    """Longest a request waits for others to join its batch."""
    max_texts: int = 256
    """Most texts in one request (more: 422)."""
    max_chars: int = 10_000
    """Most characters in one text (more: 422)."""
    max_body_bytes: int = 1 << 20
    """Largest request body in bytes (more: 413)."""
    workers: int = 1
    """Server processes, each with its own copy of the model and its own batcher."""
    model_process: bool = True
    """Run the model in a process of its own beside each server process (no GIL shared with the
    event loop: higher throughput under load; a second copy of the model in memory)."""
    threads: int | None = None
    """CPU threads for the model in each worker (None: the project's thread policy)."""
    batch_size: int = 16
    """Texts per forward pass inside a micro-batch. The batch is sorted by length and cut into
    passes of this many, so a short text is not padded to the longest of ~128 random ones
    (load test on 2 CPU cores: 16 with max_batch 128 gave 83 % of offline throughput, the
    predict default 64 with max_batch 64 about 70 %; docs/deploy.md)."""
    backend: str = BACKENDS[0]
    """``torch`` or ``onnx`` (BERT folders with an exported model.onnx)."""
    quantize: bool = False
    """BERT: int8 (torch dynamic quantization; with ``onnx`` the exported model.int8.onnx)."""
    api_key: str | None = None
    """When set, /predict and /info need ``Authorization: Bearer KEY`` (else 401)."""
    shutdown_timeout_s: float = 30.0
    """On SIGTERM/SIGINT: how long in-flight requests may take to finish."""
    access_log: bool = False

    def check(self) -> list[str]:
        """Problems with these settings, one message each (empty when fine)."""
        problems = []
        for name in ("max_batch", "max_texts", "max_chars", "max_body_bytes", "workers", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            problems.append(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        if not 0 <= self.port <= 65535:
            problems.append(f"--port must be between 0 and 65535, got {self.port}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"--threads must be at least 1, got {self.threads}")
        return problems

    def public(self) -> dict:
        """The settings as ``GET /info`` shows them (the key itself never)."""
        out = asdict(self)
        out["api_key"] = self.api_key is not None
        return out

    def resolved_key(self) -> ServeSettings:
        """A copy whose ``api_key`` falls back to the environment variable."""
        if self.api_key is None and os.environ.get(API_KEY_ENV):
            return ServeSettings(**{**asdict(self), "api_key": os.environ[API_KEY_ENV]})
        return self

    @classmethod
    def from_dict(cls, values: dict) -> ServeSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
