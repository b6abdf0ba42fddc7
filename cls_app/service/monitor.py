"""What the service sees: Prometheus metrics on ``GET /metrics``, the drift of its last texts, the prediction log.

Metrics (``prometheus-client``; every series carries ``model`` (the folder's name) and ``version``
(:func:`~cls_app.models.folders.model_version`)):

* ``cls_requests_total{endpoint, code}`` and ``cls_request_seconds{endpoint}`` (a histogram): every request
  (``endpoint`` is the route, ``other`` for unknown paths);
* ``cls_texts_total``, ``cls_batch_texts`` (a histogram of micro-batch sizes);
* ``cls_predictions_total{label}``, ``cls_abstentions_total{reason}``, ``cls_ood_score`` (a histogram);
* ``cls_model_info{kind, task, app_version}`` (1);
* ``cls_drift{signal}`` (1: drifting, 0: not; absent before the window holds a verdict), ``cls_drift_p_value
  {signal}``, ``cls_drift_window_texts``: the verdict of :mod:`cls_app.evaluation.drift` on the last
  ``--drift-window`` texts (recomputed at most every :data:`DRIFT_EVERY` new texts, when scraped or asked
  for on ``/info``; the texts' figures are computed then, not on the request path).

With ``--workers N`` the processes share the metrics through prometheus-client's multiprocess mode (the
server sets ``PROMETHEUS_MULTIPROC_DIR``); each worker keeps its own drift window, and ``/metrics``
answers with the sum of the counters and histograms of all workers.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.drift import DriftReport, compare
from ..inference.prediction_log import LogSettings, PredictionLog
from ..models.reference import WindowStats, predicted_labels
from ..version import __version__

log = logging.getLogger(__name__)

__all__ = ["DRIFT_EVERY", "MULTIPROC_ENV", "Monitor"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DRIFT_EVERY = 100
"""The drift verdict is recomputed when at least this many texts came in since the last one."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
OOD_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Monitor:
    """The metrics, the drift window and the log of one server process for ``model``."""

    def __init__(self, model: Any, metrics: bool = True, drift_window: int = 1000,
                 log_settings: LogSettings | None = None, version: str | None = None) -> None:
        from ..models.folders import model_version

        self.model = model
        self.name = Path(model.path).name if model.path is not None else model.kind
        self.version = version if version is not None else (model_version(model.path) if model.path else "")
        self.metrics = metrics
        self.window: deque[tuple[str, float, tuple[str, ...]]] = deque(maxlen=max(0, drift_window))
        self._since = 0
        self._report: DriftReport | None = None
        self._lock = threading.Lock()
        self.prediction_log = PredictionLog(log_settings.log_predictions, log_settings, model, self.version) \
            if log_settings is not None and log_settings.log_predictions else None
        if metrics:
            self._make_metrics()

    # ------------------------------------------------------------------ metrics

    def _make_metrics(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        multi = bool(os.environ.get(MULTIPROC_ENV))
        common = ["model", "version"]
        reg = None if multi else self.registry  # multiprocess mode: the values live in files, collected per scrape
        self.requests = Counter("cls_requests", "requests by endpoint and status code", [*common, "endpoint", "code"],
                                registry=reg)
        self.latency = Histogram("cls_request_seconds", "request latency", [*common, "endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=reg)
        self.texts = Counter("cls_texts", "texts classified", common, registry=reg)
        self.batches = Histogram("cls_batch_texts", "texts per micro-batch", common, buckets=BATCH_BUCKETS,
                                 registry=reg)
        self.predicted = Counter("cls_predictions", "decided labels", [*common, "label"], registry=reg)
        self.abstained = Counter("cls_abstentions", "abstentions by reason", [*common, "reason"], registry=reg)
        self.ood = Histogram("cls_ood_score", "out-of-domain scores (1: dev's 95th percentile)", common,
                             buckets=OOD_BUCKETS, registry=reg)
        gauge_mode = {"multiprocess_mode": "max"} if multi else {}
        self.model_info = Gauge("cls_model_info", "the model served", [*common, "kind", "task", "app_version"],
                                registry=reg, **gauge_mode)  # type: ignore[arg-type]
        self.drift_flag = Gauge("cls_drift", "1 when the last window of texts drifts on this signal",
                                [*common, "signal"], registry=reg, **gauge_mode)  # type: ignore[arg-type]
        self.drift_p = Gauge("cls_drift_p_value", "the drift test's p-value on the last window", [*common, "signal"],
                             registry=reg, **({"multiprocess_mode": "min"} if multi else {}))  # type: ignore[arg-type]
        self.window_texts = Gauge("cls_drift_window_texts", "texts in the drift window", common, registry=reg,
                                  **gauge_mode)  # type: ignore[arg-type]
        self.model_info.labels(self.name, self.version, self.model.kind, self.model.task.name, __version__).set(1)
        self._labels = (self.name, self.version)

    def request(self, endpoint: str, code: int, seconds: float) -> None:
        if self.metrics:
            self.requests.labels(*self._labels, endpoint, str(code)).inc()
            self.latency.labels(*self._labels, endpoint).observe(seconds)

    def batch(self, texts: int, _seconds: float) -> None:
        if self.metrics:
            self.batches.labels(*self._labels).observe(texts)

    def exposition(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type (the drift gauges brought up to date first)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self.drift()
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # ------------------------------------------------------------------ every answer

    def observe(self, texts: Sequence[str], scored: Any, abstention: Any) -> None:
        """Count the answers to ``texts`` (all non-empty), keep them in the drift window, log them."""
        probs, ood = scored.probs, np.asarray(scored.ood, dtype=float)
        decided = predicted_labels(self.model, probs)
        if self.metrics:
            labels = self._labels
            self.texts.labels(*labels).inc(len(texts))
            for row in decided:
                for label in row:
                    self.predicted.labels(*labels, label).inc()
            for reason in abstention.reason:
                if reason:
                    self.abstained.labels(*labels, str(reason)).inc()
            for value in ood[np.isfinite(ood)]:
                self.ood.labels(*labels).observe(float(value))
        if self.window.maxlen:
            with self._lock:
                self.window.extend(zip(texts, ood.tolist(), (tuple(r) for r in decided), strict=True))
                self._since += len(texts)
        if self.prediction_log is not None:
            self.prediction_log.observe(texts, probs, ood, abstention)

    # ------------------------------------------------------------------ drift

    def drift(self) -> DriftReport | None:
        """The verdict on the window (None: the model has no drift reference or the window is off); recomputed
        when :data:`DRIFT_EVERY` texts came in since the last."""
        reference = self.model.reference
        if reference is None or not self.window.maxlen:
            return None
        with self._lock:
            fresh = self._report is None or self._since >= DRIFT_EVERY
            rows = list(self.window) if fresh else []
            if fresh:
                self._since = 0
        if fresh:
            texts = [t for t, _, _ in rows]
            chars = reference.char_set if reference.chars else None
            stats = WindowStats.of(self.model.view(texts) if chars else texts, texts,
                                   np.asarray([o for _, o, _ in rows], dtype=float), [d for _, _, d in rows], chars)
            self._report = compare(reference, stats)
            if self.metrics:
                self.window_texts.labels(*self._labels).set(len(rows))
                for s in self._report.signals:
                    self.drift_flag.labels(*self._labels, s.name).set(1.0 if s.drift else 0.0)
                    self.drift_p.labels(*self._labels, s.name).set(s.p_value)
        return self._report

    def info(self) -> dict:
        """``/info``'s ``monitoring`` part."""
        report = self.drift()
        return {"metrics": self.metrics, "model_version": self.version,
                "drift_window": self.window.maxlen, "window_texts": len(self.window),
                "drift": report.to_json() if report is not None else
                ("no drift reference in the model folder" if self.model.reference is None else "off"),
                "prediction_log": str(self.prediction_log.folder) if self.prediction_log is not None else None}

    def close(self) -> None:
        if self.prediction_log is not None:
            self.prediction_log.close()
