"""The service's settings: every default in one place (``run.py serve`` reads these)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

from ..errors import UserError
from ..inference.prediction_log import LogSettings
from ..models.options import BACKENDS
from ..runtime.precisions import INFERENCE_PRECISIONS
from ..settings import default, setting
from ..tasks.abstain import AbstainSettings

API_KEY_ENV = "CLS_APP_API_KEY"
"""Environment variable read for the API key when ``--api-key`` is not given."""


@dataclass
class ServeSettings:
    """How ``run.py serve`` runs; the defaults are the CLI's defaults."""

    host: str = setting("127.0.0.1", "address to listen on (default: %(default)s, this machine only)")
    """Address to bind; the loopback interface unless told otherwise."""
    port: int = setting(8000, "port (default: %(default)s)")
    max_batch: int = setting(128, "most texts run together (default: %(default)s; 1 turns micro-batching off)")
    """Most texts run together in one micro-batch (1: micro-batching off)."""
    max_wait_ms: float = setting(5.0, "longest a request waits for others to join its batch (default: %(default)s)")
    """Longest a request waits for others to join its batch."""
    max_texts: int = setting(256, "texts per request (default: %(default)s; 422)")
    """Most texts in one request (more: 422)."""
    max_chars: int = setting(10_000, "characters per text (default: %(default)s; 422)")
    """Most characters in one text (more: 422)."""
    max_body_bytes: int = setting(1 << 20, "request body size (default: %(default)s; 413)")
    """Largest request body in bytes (more: 413)."""
    workers: int = setting(1, "server processes, each with its own model copy (default: %(default)s)")
    """Server processes, each with its own copy of the model and its own batcher."""
    model_process: bool = setting(True, "run the model in a process of its own beside each server process, so HTTP "
                                  "handling and the model do not share Python's GIL (default: on; --no-model-process "
                                  "keeps one copy of the model in memory)", toggle=True)
    """Run the model in a process of its own beside each server process (no GIL shared with the
    event loop: higher throughput under load; a second copy of the model in memory)."""
    threads: int | None = setting(None, "CPU threads for the model in each worker (default: the thread policy)")
    """CPU threads for the model in each worker (None: the project's thread policy)."""
    batch_size: int = setting(16, "texts per forward pass (default: %(default)s)")
    """Texts per forward pass inside a micro-batch. The batch is sorted by length and cut into
    passes of this many, so a short text is not padded to the longest of ~128 random ones
    (load test on 2 CPU cores: 16 with max_batch 128 gave 83 % of offline throughput, the
    predict default 64 with max_batch 64 about 70 %; docs/deploy.md)."""
    backend: str = setting(BACKENDS[0], cli=False)
    """``torch`` or ``onnx`` (BERT folders with an exported model.onnx)."""
    quantize: bool = setting(False, cli=False)
    """BERT: int8 (torch dynamic quantization; with ``onnx`` the exported model.int8.onnx)."""
    precision: str = setting(INFERENCE_PRECISIONS[0], cli=False)
    script: str | None = setting(None, cli=False)  # another view of the texts than the folder's (--script)
    """BERT and textcnn: ``fp32`` or ``bf16`` (autocast; fast on CPUs with AVX512-BF16 or AMX)."""
    api_key: str | None = setting(None, f"require 'Authorization: Bearer KEY' on /predict and /info (default: the "
                                  f"{API_KEY_ENV} environment variable, if set)")
    """When set, /predict and /info need ``Authorization: Bearer KEY`` (else 401)."""
    shutdown_timeout_s: float = setting(30.0, "on SIGTERM/Ctrl-C, seconds in-flight requests get to finish "
                                        "(default: %(default)s)", flag="--shutdown-timeout", metavar="S")
    """On SIGTERM/SIGINT: how long in-flight requests may take to finish."""
    access_log: bool = setting(False, "log every request")
    metrics: bool = setting(True, "Prometheus metrics on GET /metrics (requests, latency, batch sizes, labels, "
                            "abstentions, out-of-domain scores, drift; default: on)", toggle=True)
    """``GET /metrics`` (:mod:`cls_app.service.monitor`)."""
    drift_window: int = setting(1000, "the drift verdict on /metrics and /info covers the last N texts (0: off; "
                                "default: %(default)s)", metavar="N")
    """Texts in the rolling drift window."""
    log_predictions: str | None = setting(default(LogSettings, "log_predictions"), cli=False)
    log_text: str = setting(default(LogSettings, "log_text"), cli=False)
    log_max_mb: float = setting(default(LogSettings, "log_max_mb"), cli=False)
    """The prediction log (:class:`~cls_app.inference.prediction_log.LogSettings`; ``serve`` takes its flags)."""
    follow: bool = setting(True, cli=False)
    """A training folder holding ``best.json`` serves the model it recommends (``--no-follow``: the folder's own)."""
    prefer: str = setting("quality", cli=False)
    """... or, ``fast``, the fast model it names beside it (``--prefer``)."""
    reject: str | None = setting(None, cli=False)
    target_coverage: float | None = setting(None, cli=False)
    target_precision: float | None = setting(None, cli=False)
    """Another abstention rule than the folder's (:class:`~cls_app.tasks.AbstainSettings`; None: the folder's)."""

    @property
    def log_settings(self) -> LogSettings:
        """The prediction-log fields as :class:`~cls_app.inference.prediction_log.LogSettings`."""
        return LogSettings(self.log_predictions, self.log_text, self.log_max_mb)

    @property
    def abstain(self) -> AbstainSettings:
        """The abstention flags as :class:`~cls_app.tasks.AbstainSettings`."""
        return AbstainSettings(self.reject, self.target_coverage, self.target_precision)

    def check(self) -> list[str]:
        """Problems with these settings, one message each (empty when fine)."""
        problems = []
        for name in ("max_batch", "max_texts", "max_chars", "max_body_bytes", "workers", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.drift_window < 0:
            problems.append(f"--drift-window must be 0 or more, got {self.drift_window}")
        try:
            self.log_settings.check()
        except UserError as exc:
            problems.append(str(exc))
        if self.max_wait_ms < 0:
            problems.append(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        if not 0 <= self.port <= 65535:
            problems.append(f"--port must be between 0 and 65535, got {self.port}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"--threads must be at least 1, got {self.threads}")
        try:
            self.abstain.check()
        except UserError as exc:
            problems.append(str(exc))
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
