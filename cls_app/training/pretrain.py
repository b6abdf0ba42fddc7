"""``run.py pretrain``: masked-language-model (+ next-sentence) pre-training of a small BERT,
or ELECTRA-style replaced-token detection (``--objective electra``, see :mod:`cls_app.modeling.electra`).

The model is :class:`transformers.BertForPreTraining` with a cheaper forward: the MLM head
(transform + vocabulary projection) runs only on the hidden states of the masked positions,
gathered first, instead of at every position; for a 21k vocabulary that head is most of a
small model's compute. Weights, names and the saved folder are exactly BertForPreTraining's,
so the output folder loads with ``BertModel.from_pretrained``, ``BertForPreTraining``,
``BertForMaskedLM`` and ``run.py train --pretrained``.

The output folder holds ``config.json``, ``vocab.txt``, ``model.safetensors`` (the model),
``pretrain_args.json`` (settings, for ``--resume``), ``pretrain_log.csv`` (loss curve),
``pretrain_state.pt`` (optimizer, scheduler, step, RNG: resumable) and, with
``--snapshot-every``, ``snapshots/step-N/`` model folders along the way. With ELECTRA,
``model.safetensors`` is the discriminator (the BERT to fine-tune) and ``generator.safetensors``
holds the generator, needed only to resume.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertForPreTraining, get_linear_schedule_with_warmup

from ..bars import progress_bar
from ..errors import UserError
from ..fileio import atomic_files, atomic_open, atomic_path, write_json
from ..io.corpus import Corpus, read_corpus
from ..modeling.bert import parameter_groups
from ..modeling.electra import GENERATOR_FILE, ElectraPretrainer
from ..modeling.folder import write_bert_files
from ..runtime.device import adamw, autocast, configure_threads, resolve_precision
from ..text.tokenizer import CharTokenizer
from .pretrain_data import (
    EncodedCorpus,
    Example,
    MaskedBatch,
    encode_corpus,
    make_batch,
    nsp_pairs,
    packed_sequences,
    special_ids,
)
from .pretrain_settings import OBJECTIVES, PretrainSettings

log = logging.getLogger(__name__)

STATE_FILE = "pretrain_state.pt"
ARGS_FILE = "pretrain_args.json"
LOG_FILE = "pretrain_log.csv"


class BertForPreTrainingGathered(BertForPreTraining):
    """BertForPreTraining whose MLM head runs only at the masked positions."""

    def pretrain_losses(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
        positions: torch.Tensor,
        labels: torch.Tensor,
        nsp_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """MLM loss/accuracy on the flat ``positions`` (and NSP loss/accuracy when labelled)."""
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        hidden = out.last_hidden_state
        gathered = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
        logits = self.cls.predictions(gathered)
        mlm_loss = nn.functional.cross_entropy(logits, labels)
        result = {
            "loss": mlm_loss,
            "mlm_loss": mlm_loss.detach(),
            "mlm_acc": (logits.detach().argmax(-1) == labels).float().mean(),
        }
        if nsp_labels is not None:
            nsp_logits = self.cls.seq_relationship(out.pooler_output)
            nsp_loss = nn.functional.cross_entropy(nsp_logits, nsp_labels)
            result["loss"] = mlm_loss + nsp_loss
            result["nsp_loss"] = nsp_loss.detach()
            result["nsp_acc"] = (nsp_logits.detach().argmax(-1) == nsp_labels).float().mean()
        return result


def pretrain_config(settings: PretrainSettings, vocab_size: int) -> BertConfig:
    """BERT config of the model to pre-train."""
    if settings.hidden % settings.heads:
        raise UserError(f"--hidden {settings.hidden} must be divisible by --heads {settings.heads}")
    if settings.max_len > settings.max_position:
        raise UserError(f"--max-len {settings.max_len} is above --max-position {settings.max_position}")
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=settings.hidden,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        intermediate_size=settings.intermediate or 4 * settings.hidden,
        max_position_embeddings=settings.max_position,
        hidden_dropout_prob=settings.dropout,
        attention_probs_dropout_prob=settings.dropout,
        type_vocab_size=2,
    )


def build_model(settings: PretrainSettings, tokenizer: CharTokenizer) -> BertForPreTrainingGathered | ElectraPretrainer:
    """A freshly initialised model for ``settings.objective``."""
    config = pretrain_config(settings, len(tokenizer))
    if settings.objective == "mlm":
        return BertForPreTrainingGathered(config)
    gen_hidden = settings.generator_hidden or max(32, settings.hidden // 4)
    gen_layers = settings.generator_layers or settings.layers
    never = torch.as_tensor(special_ids(tokenizer), dtype=torch.long)
    return ElectraPretrainer(config, gen_hidden, gen_layers, settings.disc_weight, never_sample=never)


def save_pretrained_dir(model: BertForPreTraining | ElectraPretrainer, tokenizer: CharTokenizer,
                        out_dir: str | Path, with_generator: bool = True) -> Path:
    """Write config.json, vocab.txt and model.safetensors: the whole BertForPreTraining (MLM),
    or the ELECTRA discriminator (plus ``generator.safetensors`` when ``with_generator``)."""
    if isinstance(model, ElectraPretrainer):
        write_bert_files(model.discriminator, tokenizer, out_dir, architectures=["BertModel"])
        if with_generator:
            model.save_generator(out_dir)
        return Path(out_dir)
    return write_bert_files(model, tokenizer, out_dir, architectures=["BertForPreTraining"])


class _Epochs:
    """Step -> batch of examples; epoch ``e`` is shuffled with seed ``(seed, e)``, so any step
    can be reproduced (for ``--resume``) without saving the data order."""

    def __init__(self, enc: EncodedCorpus, tokenizer: CharTokenizer, settings: PretrainSettings) -> None:
        self.enc, self.tok, self.s = enc, tokenizer, settings
        self.epoch, self.first_step = -1, 0
        self.batches: list[np.ndarray] = []
        self.examples: list[Any] = []

    def _build(self, epoch: int) -> None:
        rng = np.random.default_rng([self.s.seed, epoch])
        if self.s.nsp:
            examples = nsp_pairs(self.enc, self.tok, self.s.max_len, rng)
        else:
            examples = packed_sequences(self.enc, self.tok, self.s.max_len, rng)
        if not examples:
            raise UserError("the corpus is too small to make a single pre-training sequence")
        # batches of similar lengths (NSP pairs vary), in random order
        order = rng.permutation(len(examples))
        lengths = np.asarray([len(examples[i].ids) for i in order])
        mega = self.s.batch_size * 50
        batches = []
        for start in range(0, len(order), mega):
            chunk = order[start : start + mega]
            chunk = chunk[np.argsort(-lengths[start : start + mega], kind="stable")]
            batches += [chunk[i : i + self.s.batch_size] for i in range(0, len(chunk), self.s.batch_size)]
        self.batches = [batches[i] for i in rng.permutation(len(batches))]
        self.examples = examples
        self.epoch = epoch

    def batch(self, step: int) -> list[Example]:
        """The examples of optimizer step ``step`` (0-based)."""
        if self.epoch < 0:
            self._build(0)
        while step >= self.first_step + len(self.batches):
            self.first_step += len(self.batches)
            self._build(self.epoch + 1)
            log.info("pre-training epoch %d: %d sequences", self.epoch + 1, len(self.examples))
        return [self.examples[i] for i in self.batches[step - self.first_step]]


def _tensors(b: MaskedBatch) -> dict[str, Any]:
    return {
        "input_ids": torch.from_numpy(b.input_ids),
        "attention_mask": torch.from_numpy(b.attention_mask),
        "token_type_ids": torch.from_numpy(b.token_type_ids),
        "positions": torch.from_numpy(b.positions),
        "labels": torch.from_numpy(b.labels),
        "nsp_labels": None if b.nsp_labels is None else torch.from_numpy(b.nsp_labels),
    }


def _write_log(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load_settings(out: Path) -> PretrainSettings:
    """The settings saved by an earlier run in ``out`` (for ``--resume``)."""
    try:
        raw = json.loads((out / ARGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot resume: {out / ARGS_FILE} is missing or unreadable ({exc})") from None
    known = {f.name for f in fields(PretrainSettings)}
    saved = raw.get("settings", {}) if isinstance(raw, dict) else {}
    unknown = sorted(set(saved) - known)
    if unknown:  # written by another version of this application
        log.warning("ignoring settings this version does not know in %s: %s", out / ARGS_FILE, ", ".join(unknown))
    try:
        return PretrainSettings(**{k: v for k, v in saved.items() if k in known})
    except TypeError as exc:
        raise UserError(f"cannot resume: {out / ARGS_FILE} lacks settings ({exc})") from None


def check_pretrain_settings(settings: PretrainSettings) -> None:
    """Reject impossible pre-training settings (a :class:`UserError` naming the flag)."""
    if not 0 < settings.mlm_prob < 1:
        raise UserError(f"--mlm-prob must be between 0 and 1, got {settings.mlm_prob}")
    if settings.max_len < 8:
        raise UserError(f"--max-len must be at least 8, got {settings.max_len}")
    if settings.objective not in OBJECTIVES:
        raise UserError(f"--objective {settings.objective!r}: use one of {', '.join(OBJECTIVES)}")
    if settings.objective == "electra" and settings.nsp:
        raise UserError("--nsp works with --objective mlm only (ELECTRA has no next-sentence task)")


def _saved_state(out: Path, resume: bool) -> dict | None:
    """The resumable state in ``out`` (``--resume``); refuse to start over an existing run."""
    if resume:
        if not (out / STATE_FILE).is_file():
            raise UserError(f"cannot resume: {out / STATE_FILE} not found (start without --resume)")
        return torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    if (out / STATE_FILE).is_file():
        raise UserError(f"{out} already holds a pre-training run: add --resume to continue it, or pick a new --out")
    return None


def _tokenizer(settings: PretrainSettings, out: Path, corpus: Corpus, resume: bool) -> CharTokenizer:
    if resume:
        return CharTokenizer.from_file(out / "vocab.txt")
    if settings.vocab:
        return CharTokenizer.from_file(settings.vocab)
    tokenizer = CharTokenizer.build(corpus.texts(), min_freq=settings.min_freq, max_vocab=settings.max_vocab)
    log.info("built a vocabulary of %d tokens from the corpus", len(tokenizer))
    return tokenizer


def _model(settings: PretrainSettings, tokenizer: CharTokenizer, out: Path,
           resume: bool) -> BertForPreTrainingGathered | ElectraPretrainer:
    torch.manual_seed(settings.seed)
    if resume and settings.objective == "mlm":
        return BertForPreTrainingGathered.from_pretrained(out)
    model = build_model(settings, tokenizer)
    if resume and isinstance(model, ElectraPretrainer):
        try:
            model.load_weights(out)
        except (OSError, ValueError, RuntimeError) as exc:
            raise UserError(f"cannot resume {out}: its ELECTRA weights are missing or do not match "
                            f"({exc})") from None
    return model


class Pretrainer:
    """One pre-training run in ``out``: model, optimizer and schedule, the step position and log;
    :meth:`run` trains until ``settings.steps`` (or a time limit), saving as it goes."""

    def __init__(self, settings: PretrainSettings, out: Path, resume: bool) -> None:
        check_pretrain_settings(settings)
        self.settings, self.out = settings, out
        state = _saved_state(out, resume)
        corpus = read_corpus(settings.corpus, text_col=settings.text_col, encoding=settings.encoding)
        log.info("corpus: %d documents, %d characters", len(corpus), corpus.n_chars)
        self.tokenizer = _tokenizer(settings, out, corpus, resume)
        enc = encode_corpus(corpus, self.tokenizer, wwm=settings.wwm)
        if not enc.docs or enc.n_tokens == 0:  # e.g. only BOMs and odd whitespace (found by fuzzing)
            raise UserError(f"{', '.join(map(str, settings.corpus))}: no text to pre-train on ({len(corpus)} "
                            "document(s), no tokens once tokenized); give files that hold text")
        log.info("corpus: %d tokens%s", enc.n_tokens, " (jieba word starts for whole-word masking)" if settings.wwm
                 else "")
        self.model = _model(settings, self.tokenizer, out, resume)
        log.info("model (%s): %d layers, hidden %d, %.1fM parameters", settings.objective, settings.layers,
                 settings.hidden, sum(p.numel() for p in self.model.parameters()) / 1e6)
        cpu = torch.device("cpu")  # pre-training runs on CPU (see run())
        self.optimizer = adamw(parameter_groups(self.model, settings.weight_decay), settings.lr, cpu)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(settings.warmup_ratio * settings.steps), settings.steps
        )
        self.step, self.tokens, self.elapsed_before = 0, 0, 0.0
        self.rows = _read_log(out / LOG_FILE) if resume else []
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            self.step, self.tokens = int(state["step"]), int(state["tokens"])
            self.elapsed_before = float(state["elapsed"])
            self.rows = [r for r in self.rows if int(r["step"]) <= self.step]
            log.info("resuming %s at step %d of %d", out, self.step, settings.steps)
        else:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / ARGS_FILE, {"settings": asdict(settings), "vocab_size": len(self.tokenizer),
                                         "corpus_documents": len(corpus), "corpus_tokens": enc.n_tokens})
        self.epochs = _Epochs(enc, self.tokenizer, settings)
        self.mask_kw: dict[str, Any] = {"pad_id": self.tokenizer.pad_id, "specials": special_ids(self.tokenizer),
                        "mask_id": self.tokenizer.mask_id, "vocab_size": len(self.tokenizer),
                        "mlm_prob": settings.mlm_prob}
        self.start = time.perf_counter()
        self._acc: dict[str, float] = {}
        self._acc_n, self._tok_since, self._t_since = 0, 0, self.start

    def save(self) -> None:
        """The model folder, the resumable state and the log, moved in together (the state last):
        a failed save leaves the previous step's files whole and matching."""
        names = ["model.safetensors", "vocab.txt", "config.json"]
        if isinstance(self.model, ElectraPretrainer):
            names.append(GENERATOR_FILE)
        names += [LOG_FILE] if self.rows else []
        with atomic_files(self.out, [*names, STATE_FILE]) as tmp:
            save_pretrained_dir(self.model, self.tokenizer, tmp)
            with atomic_path(tmp / STATE_FILE) as state_tmp:
                torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                            "torch_rng": torch.get_rng_state(), "step": self.step, "tokens": self.tokens,
                            "elapsed": self.elapsed_before + time.perf_counter() - self.start}, state_tmp)
            if self.rows:
                _write_log(tmp / LOG_FILE, self.rows)

    def snapshot(self) -> None:
        """A model copy in ``OUT/snapshots/step-N``."""
        save_pretrained_dir(self.model, self.tokenizer, self.out / "snapshots" / f"step-{self.step}",
                            with_generator=False)

    def train_step(self, device: torch.device, amp_dtype: torch.dtype | None) -> None:
        """One optimizer step on the batch of the current step (data and masks are functions of it)."""
        s = self.settings
        examples = self.epochs.batch(self.step)
        batch = make_batch(examples, np.random.default_rng([s.seed, 7919, self.step]), **self.mask_kw)
        with autocast(device, amp_dtype):
            result = self.model.pretrain_losses(**_tensors(batch))
        result["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        n_tok = int(batch.attention_mask.sum())
        self.tokens += n_tok
        self._tok_since += n_tok
        for k, v in result.items():
            if k != "loss":
                self._acc[k] = self._acc.get(k, 0.0) + float(v)
        self._acc_n += 1

    def log_row(self) -> dict:
        """Append the averages since the last row to the log; return the row."""
        now = time.perf_counter()
        row = {"step": self.step, "epoch": self.epochs.epoch,
               **{k: round(v / self._acc_n, 4) for k, v in self._acc.items()},
               "lr": f"{self.scheduler.get_last_lr()[0]:.3g}",
               "tokens_per_s": round(self._tok_since / max(now - self._t_since, 1e-9), 1),
               "elapsed_s": round(self.elapsed_before + now - self.start, 1)}
        self.rows.append(row)
        log.info("step %d: %s", self.step, ", ".join(f"{k} {v}" for k, v in row.items() if k != "step"))
        self._acc, self._acc_n, self._tok_since, self._t_since = {}, 0, 0, now
        return row

    def run(self, deadline: float | None = None) -> str:
        """Train until the last step or ``deadline`` (a ``time.perf_counter()`` value); return why it stopped."""
        s = self.settings
        cpu = torch.device("cpu")
        amp_dtype = resolve_precision(s.precision, cpu)
        self.model.train()
        self.start = self._t_since = time.perf_counter()
        stopped = "steps"
        bar = progress_bar(total=s.steps, initial=self.step, desc="pretrain", unit="step", mininterval=5, leave=True)
        try:
            while self.step < s.steps:
                self.train_step(cpu, amp_dtype)
                bar.update(1)
                if self.step % s.log_every == 0 or self.step == s.steps:
                    row = self.log_row()
                    bar.set_postfix(mlm_loss=row["mlm_loss"], tok_s=row["tokens_per_s"])
                if s.snapshot_every and self.step % s.snapshot_every == 0:
                    self.snapshot()
                if self.step % s.save_every == 0 or self.step == s.steps:
                    self.save()
                if deadline is not None and time.perf_counter() >= deadline and self.step < s.steps:
                    stopped = "time limit"
                    self.save()
                    if s.snapshot_every:
                        self.snapshot()
                    break
        finally:  # an error line must not share the bar's line
            bar.close()
        if self.step == s.steps and not (self.out / STATE_FILE).is_file():
            self.save()
        return stopped


def run_pretraining(
    settings: PretrainSettings,
    out: str | Path,
    *,
    resume: bool = False,
    time_limit_s: float | None = None,
    threads: int | None = None,
) -> dict:
    """Pre-train (or continue) a BERT into ``out``; returns a summary dict.

    ``time_limit_s`` stops early (after saving) when the wall time of this call is spent;
    the learning-rate schedule still runs over ``settings.steps``, so a later ``--resume``
    carries on where it stopped.
    """
    out = Path(out)
    configure_threads(threads)
    t0 = time.perf_counter()
    run = Pretrainer(settings, out, resume)
    stopped = run.run(None if time_limit_s is None else t0 + time_limit_s)
    seconds = run.elapsed_before + time.perf_counter() - run.start
    summary = {"step": run.step, "steps": settings.steps, "stopped_by": stopped, "tokens": run.tokens,
               "train_seconds": round(seconds, 1), "tokens_per_s": round(run.tokens / max(seconds, 1e-9), 1),
               "last": run.rows[-1] if run.rows else {}}
    write_json(out / "pretrain_summary.json", summary)
    log.info("pre-training stopped at step %d/%d (%s) after %.0fs; model in %s", run.step, settings.steps,
             stopped, seconds, out)
    return summary
