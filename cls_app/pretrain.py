"""``run.py pretrain``: masked-language-model (+ next-sentence) pre-training of a small BERT,
or ELECTRA-style replaced-token detection (``--objective electra``, see :mod:`cls_app.electra`).

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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import BertConfig, BertForPreTraining, get_linear_schedule_with_warmup

from .corpus import read_corpus
from .device import autocast, resolve_precision
from .electra import ElectraPretrainer
from .errors import UserError
from .fileio import atomic_open, atomic_path, write_json
from .model import parameter_groups
from .model_dir import write_bert_files
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
from .tokenizer import CharTokenizer

log = logging.getLogger(__name__)

STATE_FILE = "pretrain_state.pt"
ARGS_FILE = "pretrain_args.json"
LOG_FILE = "pretrain_log.csv"


@dataclass
class PretrainSettings:
    """Everything a pre-training run depends on (saved to ``pretrain_args.json``)."""

    corpus: list[str]
    text_col: str | None = None
    encoding: str | None = None
    vocab: str | None = None  # an existing vocab.txt (default: build from the corpus)
    min_freq: int = 2
    max_vocab: int = 21128
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int | None = None
    max_position: int = 512
    dropout: float = 0.1
    max_len: int = 128
    nsp: bool = False
    wwm: bool = False
    mlm_prob: float = 0.15
    steps: int = 10000
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    seed: int = 42
    log_every: int = 50
    save_every: int = 500
    snapshot_every: int = 0
    precision: str = "fp32"  # fp32 or bf16 autocast (CPUs with AVX512-BF16/AMX, GPUs)
    objective: str = "mlm"  # mlm (BERT) or electra (replaced-token detection, see electra.py)
    generator_hidden: int | None = None  # electra: generator width (default hidden / 4)
    generator_layers: int | None = None  # electra: generator depth (default: layers)
    disc_weight: float = 50.0  # electra: weight of the discriminator loss
    extra: dict = field(default_factory=dict)


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


OBJECTIVES = ("mlm", "electra")


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
        self.epoch, self.batches, self.examples, self.first_step = -1, [], [], 0

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


def _tensors(b: MaskedBatch) -> dict[str, torch.Tensor | None]:
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
    if threads:
        torch.set_num_threads(threads)
    if not 0 < settings.mlm_prob < 1:
        raise UserError(f"--mlm-prob must be between 0 and 1, got {settings.mlm_prob}")
    if settings.max_len < 8:
        raise UserError(f"--max-len must be at least 8, got {settings.max_len}")
    if settings.objective not in OBJECTIVES:
        raise UserError(f"--objective {settings.objective!r}: use one of {', '.join(OBJECTIVES)}")
    if settings.objective == "electra" and settings.nsp:
        raise UserError("--nsp works with --objective mlm only (ELECTRA has no next-sentence task)")
    t0 = time.perf_counter()
    state = None
    if resume:
        if not (out / STATE_FILE).is_file():
            raise UserError(f"cannot resume: {out / STATE_FILE} not found (start without --resume)")
        state = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    elif (out / STATE_FILE).is_file():
        raise UserError(f"{out} already holds a pre-training run: add --resume to continue it, or pick a new --out")

    corpus = read_corpus(settings.corpus, text_col=settings.text_col, encoding=settings.encoding)
    log.info("corpus: %d documents, %d characters", len(corpus), corpus.n_chars)
    if resume:
        tokenizer = CharTokenizer.from_file(out / "vocab.txt")
    elif settings.vocab:
        tokenizer = CharTokenizer.from_file(settings.vocab)
    else:
        tokenizer = CharTokenizer.build(corpus.texts(), min_freq=settings.min_freq, max_vocab=settings.max_vocab)
        log.info("built a vocabulary of %d tokens from the corpus", len(tokenizer))
    enc = encode_corpus(corpus, tokenizer, wwm=settings.wwm)
    log.info("corpus: %d tokens%s", enc.n_tokens, " (jieba word starts for whole-word masking)" if settings.wwm else "")

    torch.manual_seed(settings.seed)
    if resume and settings.objective == "mlm":
        model = BertForPreTrainingGathered.from_pretrained(out)
    else:
        model = build_model(settings, tokenizer)
        if resume:
            try:
                model.load_weights(out)
            except (OSError, ValueError, RuntimeError) as exc:
                raise UserError(f"cannot resume {out}: its ELECTRA weights are missing or do not match "
                                f"({exc})") from None
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model (%s): %d layers, hidden %d, %.1fM parameters", settings.objective, settings.layers,
             settings.hidden, n_params / 1e6)
    optimizer = torch.optim.AdamW(parameter_groups(model, settings.weight_decay), lr=settings.lr)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(settings.warmup_ratio * settings.steps), settings.steps
    )
    step, tokens, elapsed_before = 0, 0, 0.0
    rows = _read_log(out / LOG_FILE) if resume else []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        step, tokens, elapsed_before = int(state["step"]), int(state["tokens"]), float(state["elapsed"])
        rows = [r for r in rows if int(r["step"]) <= step]
        log.info("resuming %s at step %d of %d", out, step, settings.steps)
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / ARGS_FILE, {"settings": asdict(settings), "vocab_size": len(tokenizer),
                                     "corpus_documents": len(corpus), "corpus_tokens": enc.n_tokens})

    epochs = _Epochs(enc, tokenizer, settings)
    specials = special_ids(tokenizer)
    mask_kw = {"pad_id": tokenizer.pad_id, "specials": specials, "mask_id": tokenizer.mask_id,
               "vocab_size": len(tokenizer), "mlm_prob": settings.mlm_prob}

    def save() -> None:
        save_pretrained_dir(model, tokenizer, out)
        with atomic_path(out / STATE_FILE) as tmp:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "torch_rng": torch.get_rng_state(), "step": step, "tokens": tokens,
                        "elapsed": elapsed_before + time.perf_counter() - start}, tmp)
        if rows:
            _write_log(out / LOG_FILE, rows)

    model.train()
    start = time.perf_counter()
    acc: dict[str, float] = {}
    acc_n = 0
    tok_since, t_since = 0, time.perf_counter()
    stopped = "steps"
    cpu = torch.device("cpu")
    amp_dtype = resolve_precision(settings.precision, cpu)
    bar = tqdm(total=settings.steps, initial=step, desc="pretrain", unit="step", mininterval=5)
    while step < settings.steps:
        examples = epochs.batch(step)
        batch = make_batch(examples, np.random.default_rng([settings.seed, 7919, step]), **mask_kw)
        with autocast(cpu, amp_dtype):
            result = model.pretrain_losses(**_tensors(batch))
        result["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        n_tok = int(batch.attention_mask.sum())
        tokens += n_tok
        tok_since += n_tok
        for k, v in result.items():
            if k != "loss":
                acc[k] = acc.get(k, 0.0) + float(v)
        acc_n += 1
        bar.update(1)
        if step % settings.log_every == 0 or step == settings.steps:
            now = time.perf_counter()
            row = {"step": step, "epoch": epochs.epoch, **{k: round(v / acc_n, 4) for k, v in acc.items()},
                   "lr": f"{scheduler.get_last_lr()[0]:.3g}",
                   "tokens_per_s": round(tok_since / max(now - t_since, 1e-9), 1),
                   "elapsed_s": round(elapsed_before + now - start, 1)}
            rows.append(row)
            bar.set_postfix(mlm_loss=row["mlm_loss"], tok_s=row["tokens_per_s"])
            log.info("step %d: %s", step, ", ".join(f"{k} {v}" for k, v in row.items() if k != "step"))
            acc, acc_n, tok_since, t_since = {}, 0, 0, now
        if settings.snapshot_every and step % settings.snapshot_every == 0:
            save_pretrained_dir(model, tokenizer, out / "snapshots" / f"step-{step}", with_generator=False)
        if step % settings.save_every == 0 or step == settings.steps:
            save()
        if time_limit_s is not None and time.perf_counter() - t0 >= time_limit_s and step < settings.steps:
            stopped = "time limit"
            save()
            if settings.snapshot_every:
                save_pretrained_dir(model, tokenizer, out / "snapshots" / f"step-{step}", with_generator=False)
            break
    bar.close()
    if step == settings.steps and not (out / STATE_FILE).is_file():
        save()
    seconds = elapsed_before + time.perf_counter() - start
    summary = {"step": step, "steps": settings.steps, "stopped_by": stopped, "tokens": tokens,
               "train_seconds": round(seconds, 1), "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
               "last": rows[-1] if rows else {}}
    write_json(out / "pretrain_summary.json", summary)
    log.info("pre-training stopped at step %d/%d (%s) after %.0fs; model in %s", step, settings.steps,
             stopped, seconds, out)
    return summary
