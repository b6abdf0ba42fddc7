"""The ``textcnn`` kind: a small convolutional classifier (Kim 2014) over characters and character bigrams.

Each character has an embedding, each character bigram one hashed into ``buckets`` rows (CRC32,
stable across processes); their sum runs through 1-d convolutions of several widths
(``kernels``), ReLU, max-pooling over the text, dropout and a linear layer. Trained with AdamW on
the cross-entropy, or (distillation, :meth:`TextCnnClassifier.fit_soft`) on the KL divergence to a
teacher's probabilities softened by a temperature; the dev-best epoch is kept. The pooled vector is
the feature the out-of-domain distance reads.

The folder: ``classifier.json`` (family ``textcnn``, format version, labels, task, settings, the
character vocabulary) and ``model.safetensors``.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import UserError
from ..io.pairs import PAIR_SEP
from ..tasks import Task, task_from_settings
from ..tasks.calibration import metric_of
from ..version import __version__
from .base import register
from .described import SmallKind
from .folders import KIND_FILE
from .ood import lookup, text_codes
from .options import InferenceOptions

log = logging.getLogger(__name__)

FAMILY = "textcnn"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
PAD, UNK = 0, 1
ONNX_INPUTS = ("ids", "grams")  # int64 (batch, sequence): character ids and bigram buckets (Encoder.encode)
ONNX_OUTPUTS = ("logits", "pooled")  # float32 (batch, labels) and (batch, filters x kernels)


@dataclass(frozen=True)
class TextCnnSettings:
    """The network and its training (``max_len`` and ``min_steps`` chosen on the dev splits of the seven sets
    of ``bench/fast_defaults.py``, docs/fast_models.md)."""

    embed: int = 64
    filters: int = 128
    kernels: tuple[int, ...] = (2, 3, 4)
    buckets: int = 50_000
    max_len: int = 512
    dropout: float = 0.5
    epochs: int = 6
    min_steps: int = 1500  # at least this many batches: more epochs for a small training set
    batch_size: int = 64
    lr: float = 2e-3
    min_freq: int = 1
    patience: int = 0  # stop after this many epochs without a better dev score (0: never early)
    time_limit: float | None = None  # minutes of training; then dev is scored and the best state kept
    progress: bool = False

    def check(self) -> None:
        for name in ("embed", "filters", "buckets", "max_len", "epochs", "batch_size", "min_freq"):
            if getattr(self, name) < 1:
                raise UserError(f"textcnn setting {name} must be at least 1, got {getattr(self, name)}")
        if not self.kernels or min(self.kernels) < 1:
            raise UserError(f"textcnn setting kernels must be widths of at least 1, got {self.kernels}")
        if not 0 <= self.dropout < 1 or not self.lr > 0 or self.min_steps < 0 or self.patience < 0:
            raise UserError("textcnn settings: dropout in [0, 1), lr > 0, min_steps >= 0 and patience >= 0")
        if self.time_limit is not None and not self.time_limit > 0:
            raise UserError(f"textcnn setting time_limit must be a positive number of minutes, got {self.time_limit}")


def bigram_bucket(a: str, b: str, buckets: int) -> int:
    """The bucket of the bigram ``a b``: CRC32 of its UTF-8 bytes (a lone surrogate as its three bytes)."""
    return zlib.crc32((a + b).encode("utf-8", "surrogatepass")) % buckets


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1).astype(np.uint32)
    return table


CRC_TABLE = _crc_table()  # zlib's CRC32 (reflected polynomial 0xEDB88320), one entry per byte value


def utf8_bytes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each code point's UTF-8 bytes, left-aligned in 4 columns, and their count (surrogates as 3 bytes)."""
    c = codes.astype(np.int64)
    n = 1 + (c >= 0x80) + (c >= 0x800) + (c >= 0x10000)
    lead = np.select([n == 1, n == 2, n == 3], [c, 0xC0 | (c >> 6), 0xE0 | (c >> 12)], 0xF0 | (c >> 18))
    out = np.zeros((len(c), 4), dtype=np.int64)
    out[:, 0] = lead
    for j in range(1, 4):  # continuation byte j: bits of the code point below the lead's, 6 at a time
        shift = 6 * (n - 1 - j)
        out[:, j] = np.where(j < n, 0x80 | ((c >> np.maximum(shift, 0)) & 0x3F), 0)
    return out, n


def bigram_buckets(first: np.ndarray, second: np.ndarray, buckets: int) -> np.ndarray:
    """:func:`bigram_bucket` of every pair of code points at once (CRC32 by table, byte column by column)."""
    (a, na), (b, nb) = utf8_bytes(first), utf8_bytes(second)
    data = np.concatenate([a, b], axis=1)
    # the second character's bytes follow the first's: move them left over the first's unused columns
    cols = np.arange(8)[None, :]
    source = np.where(cols < na[:, None], cols, cols - na[:, None] + 4)
    data = np.take_along_axis(data, np.minimum(source, 7), axis=1)
    total = na + nb
    crc = np.full(len(data), 0xFFFFFFFF, dtype=np.int64)
    for j in range(8):
        step = CRC_TABLE[(crc ^ data[:, j]) & 0xFF].astype(np.int64) ^ (crc >> 8)
        crc = np.where(j < total, step, crc)
    return (crc ^ 0xFFFFFFFF) % buckets


class Encoder:
    """Texts -> padded character ids and bigram buckets (vectorised over a batch's characters)."""

    def __init__(self, chars: list[str], buckets: int, max_len: int) -> None:
        self.chars, self.buckets, self.max_len = chars, buckets, max_len
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        order = np.argsort(codes)
        self.char_codes, self.char_ids = codes[order], order.astype(np.int64) + 2  # id = vocabulary index + 2

    def encode(self, texts: list[str]) -> tuple[Any, Any]:
        import torch

        seqs = [t.replace(PAIR_SEP, "\x1f")[: self.max_len] or " " for t in texts]
        codes, owner, starts = text_codes(seqs)
        lengths = np.diff(np.append(starts, len(codes)))
        column = np.arange(len(codes)) - starts[owner]
        prev = np.empty_like(codes)
        prev[1:] = codes[:-1]
        prev[starts] = ord(" ")  # a text's first character follows a space
        ids = np.zeros((len(seqs), int(lengths.max())), dtype=np.int64)
        grams = np.zeros_like(ids)
        ids[owner, column] = lookup(self.char_codes, self.char_ids, codes, missing=UNK)
        grams[owner, column] = bigram_buckets(prev, codes, self.buckets) + 1
        return torch.from_numpy(ids), torch.from_numpy(grams)


def build_network(n_chars: int, n_labels: int, s: TextCnnSettings) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class TextCnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.chars = nn.Embedding(n_chars + 2, s.embed, padding_idx=PAD)
            self.grams = nn.Embedding(s.buckets + 1, s.embed, padding_idx=0)
            self.convs = nn.ModuleList(nn.Conv1d(s.embed, s.filters, k, padding=k - 1) for k in s.kernels)
            self.dropout = nn.Dropout(s.dropout)
            self.out = nn.Linear(s.filters * len(s.kernels), n_labels)

        def pooled(self, ids: torch.Tensor, grams: torch.Tensor) -> torch.Tensor:
            # every width in one matrix product: each position's window of the widest kernel's characters (the
            # text padded on the left) times the kernels, the narrower ones zero-padded on the left, so each
            # output ends at its character, as separate convolutions with padding k - 1 cut to the text's
            # length; (batch, length, filters) keeps the max over positions a reduction of contiguous rows
            x = self.chars(ids) + self.grams(grams)  # (batch, length, embed)
            widest, length = max(s.kernels), ids.shape[1]
            padded = F.pad(x, (0, 0, widest - 1, 0))
            windows = torch.cat([padded[:, i: i + length] for i in range(widest)], dim=2)
            convs = [cast(nn.Conv1d, c) for c in self.convs]
            weight = torch.cat([F.pad(c.weight, (widest - k, 0)) for c, k in zip(convs, s.kernels, strict=True)])
            bias = torch.cat([cast(torch.Tensor, c.bias) for c in convs])
            h = F.linear(windows, weight.permute(0, 2, 1).reshape(len(weight), -1), bias)
            if bool((ids[:, -1] == PAD).any()):  # padded texts in the batch: their padding never wins the max
                h = h.masked_fill((ids == PAD)[:, :, None], float("-inf"))
            return torch.relu(h.amax(dim=1))  # relu(max) = max(relu): relu on the pooled vector only

        def forward(self, ids: torch.Tensor, grams: torch.Tensor) -> torch.Tensor:
            return self.out(self.dropout(self.pooled(ids, grams)))

    return TextCnn()


@register("textcnn", family=FAMILY)
class TextCnnClassifier(SmallKind):
    """TextCNN through the one model interface; settings: :class:`TextCnnSettings` fields."""

    dtype = np.float32
    ood_method = "mahalanobis"  # on the pooled vectors
    settings_class = TextCnnSettings
    cost = 20.0
    predict_cost = 3.0
    in_main_job = True
    time_limited = True
    soft_targets = True
    exportable = True
    quick_settings = {"epochs": 3, "embed": 32, "filters": 32, "buckets": 5000, "min_steps": 60}
    default_batch_size = 256  # small passes: 64 texts a pass ran at about half the rate (docs/fast_models.md)
    max_positions = 8192  # and at most this many padded characters a pass: fewer texts when they are long

    def init_fields(self, kind: str | None) -> None:
        super().init_fields(kind)
        self.network: Any = None
        self.onnx: Any = None  # an OnnxSession with --backend onnx
        self.encoder: Encoder | None = None

    # ------------------------------------------------------------------ fitting

    def fit_task(self, train: Any, dev: Any | None, task: Task, text_pair_col: str | None = None,
                 **extra: Any) -> TextCnnClassifier:
        labels = task.vocabulary(train)
        y = task.encode(train, labels)
        if dev is not None:
            task.encode(dev, labels)
        return self._fit(train, dev, task, labels, y, None, 1.0, text_pair_col)

    def fit_soft(self, train: Any, targets: np.ndarray, labels: list[str], dev: Any | None, temperature: float = 2.0
                 ) -> TextCnnClassifier:
        """Distillation: learn ``targets`` (a teacher's probabilities on ``train.texts``, columns ``labels``)
        softened by ``temperature``, keep the dev-best epoch."""
        from ..tasks import SingleLabel

        return self._fit(train, dev, SingleLabel(), list(labels), None, np.asarray(targets), temperature, None)

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 5e-4, 5e-3, log=True),
                "min_steps": trial.suggest_int("min_steps", 300, 3000, log=True),
                "max_len": trial.suggest_categorical("max_len", [128, 256, 512]),
                "dropout": trial.suggest_float("dropout", 0.2, 0.6)}

    def estimate_fit_seconds(self, train: Any, dev: Any, task: Task) -> tuple[float, bool]:
        """Three real training steps of this network on length-grouped batches of these texts, timed, times the
        steps it will take (and a dev pass per epoch)."""
        import torch

        s = self.settings
        texts = list(train.texts)
        labels = task.vocabulary(train)
        counts = Counter(c for t in texts[:5000] for c in t[: s.max_len])
        encoder = Encoder(sorted(counts), s.buckets, s.max_len)
        network = build_network(len(counts), len(labels), s)
        opt = torch.optim.AdamW(network.parameters(), lr=s.lr, weight_decay=0.01, fused=True)
        # length-grouped batches, as training makes them (a random batch pads every text to its longest: on texts
        # of varied length that timed four times the real steps): the batches at the middle of the length order
        # and at its quarters, after one warm-up step
        order = np.argsort([len(t) for t in texts], kind="stable")
        starts = [max(0, min(len(texts) - s.batch_size, int(q * len(texts)) - s.batch_size // 2))
                  for q in (0.5, 0.5, 0.25, 0.75)]
        start = 0.0
        for i, first in enumerate(starts):
            if i == 1:
                start = time.perf_counter()
            batch = [texts[j] for j in order[first: first + s.batch_size]]
            ids, grams = encoder.encode(batch)
            loss = torch.nn.functional.cross_entropy(network(ids, grams), torch.zeros(len(batch), dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
        per_step = (time.perf_counter() - start) / 3
        per_epoch = -(-len(texts) // s.batch_size)
        epochs = max(s.epochs, -(-s.min_steps // per_epoch))
        dev_rows = len(dev) if dev is not None else 0
        return 1.0 + epochs * (per_epoch * per_step + dev_rows / s.batch_size * per_step / 3), True

    @classmethod
    def fit_seconds_prior(cls, rows: int, chars: float) -> float:
        steps = max(TextCnnSettings.epochs * -(-rows // TextCnnSettings.batch_size), TextCnnSettings.min_steps)
        return 2.0 + steps * 0.013 * max(1.0, min(chars, 512) / 20.0) ** 0.7

    def _fit(self, train: Any, dev: Any | None, task: Task, labels: list[str], y: np.ndarray | None,
             soft: np.ndarray | None, temperature: float, text_pair_col: str | None) -> TextCnnClassifier:
        import torch

        from ..bars import progress_bar

        s = self.settings
        s.check()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        counts = Counter(c for t in train.texts for c in t.replace(PAIR_SEP, "\x1f")[: s.max_len])
        chars = sorted(c for c, n in counts.items() if n >= s.min_freq)
        self.encoder = Encoder(chars, s.buckets, s.max_len)
        self.network = build_network(len(chars), len(labels), s)
        self.labels, self.task, self.pairs, self.text_pair_col = labels, task, bool(text_pair_col), text_pair_col
        opt = torch.optim.AdamW(self.network.parameters(), lr=s.lr, weight_decay=0.01, fused=True)
        texts = list(train.texts)
        order_by_len = np.argsort([len(t) for t in texts], kind="stable")
        y_dev = task.encode(dev, labels) if dev is not None and len(dev) else None
        best, best_state, t0 = -1.0, None, time.perf_counter()
        ran = 0
        targets = torch.from_numpy(soft).float() if soft is not None else torch.from_numpy(np.asarray(y))
        per_epoch = -(-len(texts) // s.batch_size)
        epochs = max(s.epochs, -(-s.min_steps // per_epoch))
        metric_name = self.metric or task.default_metric
        deadline = t0 + s.time_limit * 60.0 if s.time_limit is not None else None
        stopped, stale = None, 0
        for epoch in range(epochs):
            ran = epoch + 1
            self.network.train()
            # length-grouped batches in a shuffled order: little padding, a different mix every epoch
            batches = [order_by_len[i: i + s.batch_size] for i in range(0, len(texts), s.batch_size)]
            rng.shuffle(batches)
            for idx in progress_bar(batches, enabled=s.progress, desc=f"textcnn epoch {epoch + 1}/{epochs}"):
                ids, grams = self.encoder.encode([texts[i] for i in idx])
                logits = self.network(ids, grams)
                if soft is not None:
                    logp = torch.log_softmax(logits / temperature, dim=1)
                    q = torch.softmax(torch.log(targets[idx].clamp_min(1e-12)) / temperature, dim=1)
                    loss = torch.nn.functional.kl_div(logp, q, reduction="batchmean") * temperature ** 2
                else:
                    loss = torch.nn.functional.cross_entropy(logits, targets[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if deadline is not None and time.perf_counter() >= deadline:
                    stopped = "time"
                    break
            if y_dev is not None and dev is not None:
                # counted directly (the full report per epoch cost more than the epoch on small sets)
                metric = metric_of(y_dev, task.decide(self.scores(list(dev.texts)), labels), len(labels), metric_name)
                log.info("textcnn epoch %d: dev %s %.4f", epoch + 1, metric_name, metric)
                stale = stale + 1 if metric <= best else 0
                if metric > best:
                    best = metric
                    best_state = {k: v.detach().clone() for k, v in self.network.state_dict().items()}
                if best >= 1.0:  # a perfect dev score: no later epoch can replace this state (strictly better)
                    stopped = stopped or "perfect dev"
                elif s.patience and stale >= s.patience:
                    stopped = stopped or "dev stopped rising"
            if stopped:
                log.info("textcnn: stopping after epoch %d (%s)", epoch + 1, stopped)
                break
        if best_state is not None:
            self.network.load_state_dict(best_state)
        self.network.eval()
        seconds = time.perf_counter() - t0
        self.meta = {"kind": FAMILY, "family": FAMILY, "format_version": FORMAT_VERSION, "app_version": __version__,
                     "name": self.kind, "labels": labels,
                     "settings": {**asdict(s), "kernels": list(s.kernels), **self.common_params()},
                     "chars": chars, "train_rows": len(train), "train_seconds": round(seconds, 3), "files": [WEIGHTS],
                     "epochs": epochs, "epochs_run": ran, **({"stopped": stopped} if stopped else {})}
        if soft is not None:
            self.meta["distilled"] = {"temperature": temperature}
        if text_pair_col:
            self.meta["text_pair_col"] = text_pair_col
        if dev is not None and len(dev):
            self.settle_on_dev(train, dev, self.analyse(list(dev.texts)), self.metric, self.seed)
        self.meta.update(self.task.folder_fields())
        self.path = None
        log.info("textcnn: trained in %.1fs", seconds)
        return self

    # ------------------------------------------------------------------ predicting

    def scores(self, texts: list[str]) -> np.ndarray:
        return self.analyse(texts)[0]

    def analyse(self, texts: list[str]) -> tuple[np.ndarray, Any]:
        import torch

        from ..runtime.device import autocast
        from ..text.batching import length_sorted_batches

        assert self.encoder is not None
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        pooled = np.zeros((len(texts), self.settings.filters * len(self.settings.kernels)), dtype=np.float32)
        lengths = np.minimum([len(t) for t in texts], self.settings.max_len)
        batches = length_sorted_batches(lengths, self.forward_batch(), self.max_positions)
        with torch.inference_mode(), autocast(torch.device("cpu"), self.forward_precision()):
            for idx in batches:
                ids, grams = self.encoder.encode([texts[i] for i in idx])
                if self.onnx is not None:  # --backend onnx: the exported network in ONNX Runtime
                    logits, vec = map(torch.from_numpy, self.onnx.run(ONNX_OUTPUTS, {
                        ONNX_INPUTS[0]: ids.numpy(), ONNX_INPUTS[1]: grams.numpy()}))
                else:
                    vec = self.network.pooled(ids, grams)
                    logits = self.network.out(vec)
                probs[idx] = torch.softmax(logits.float(), dim=1).numpy()
                pooled[idx] = vec.float().numpy()
        return probs, pooled

    def describe(self) -> dict:
        """The folder's settings, with ``batch_size`` the texts a forward pass takes here (as BERT's), not
        the training batch, and how it runs: ``max_positions``, ``precision``, ``backend``."""
        out = super().describe()
        out.update({"batch_size": self.forward_batch(), "max_positions": self.max_positions,
                    "precision": "fp32" if self.forward_precision() is None else "bf16",
                    "backend": self.options.backend})
        return out

    # ------------------------------------------------------------------ folders

    def write_weights(self, folder: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.network.state_dict().items()}, str(folder / WEIGHTS))

    def export_onnx(self, out: str | Path | None = None, quantize: bool = False) -> list[Path]:
        """Write the network as ``model.onnx`` (and with ``quantize`` ``model.int8.onnx``) into the model's
        folder or ``out`` (which then gets ``classifier.json`` too: servable with ``--backend onnx`` alone).

        Inputs :data:`ONNX_INPUTS`, outputs :data:`ONNX_OUTPUTS`, batch and sequence axes dynamic; the
        files record the SHA-256 of the weights they came from, as the BERT export does."""
        import torch

        from ..modeling import export_graph, write_exports

        if self.path is None or self.network is None:
            raise UserError("export a saved textcnn folder loaded with --backend torch")
        network = self.network

        class Exported(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.network = network

            def forward(self, ids: torch.Tensor, grams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                vec = self.network.pooled(ids, grams)
                return self.network.out(vec), vec

        assert self.encoder is not None
        example = self.encoder.encode(["示例文本", "例"])
        axes = {name: {0: "batch", 1: "sequence"} for name in ONNX_INPUTS}
        axes.update({name: {0: "batch"} for name in ONNX_OUTPUTS})
        with torch.inference_mode(False), torch.no_grad():
            return write_exports(self.path, out, (KIND_FILE,), quantize,
                                 lambda path: export_graph(Exported(), example, path, ONNX_INPUTS, ONNX_OUTPUTS, axes))

    @classmethod
    def from_folder(cls, path: Path, options: InferenceOptions) -> TextCnnClassifier:
        from safetensors.torch import load_file

        from ..runtime.device import configure_threads

        meta = cls.folder_meta(path, options, FAMILY, FORMAT_VERSION, WEIGHTS, onnx=True)
        threads = configure_threads(options.threads)
        obj = cls.blank("textcnn")
        obj.restore_settings(path, {k: v for k, v in meta.get("settings", {}).items() if k != "progress"})
        obj.labels, obj.meta, obj.path, obj.options = list(meta["labels"]), meta, path, options
        obj.encoder = Encoder(list(meta["chars"]), obj.settings.buckets, obj.settings.max_len)
        if options.backend == "onnx":
            from ..runtime.onnx import OnnxSession, onnx_path

            obj.network, obj.onnx = None, OnnxSession(onnx_path(path, options.quantize), threads, ONNX_INPUTS)
        else:
            obj.network = build_network(len(meta["chars"]), len(obj.labels), obj.settings)
            obj.network.load_state_dict(load_file(str(path / WEIGHTS)))
            obj.network.eval()
            obj.onnx = None
        obj.task = task_from_settings(meta)
        obj.text_pair_col = meta.get("text_pair_col") or None
        obj.pairs = bool(obj.text_pair_col)
        return obj
