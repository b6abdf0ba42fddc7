#!/usr/bin/env python3
"""Making the scratch BERT itself stronger on THUCNews (docs/ensembles.md, "The neural model").

    python bench/neural_variants.py base  saved_models/thuc_base           # the plain BERT (--bigrams 0)
    python bench/neural_variants.py kd    saved_models/thuc_kd    0.5      # + distillation, alpha 0.5
    python bench/neural_variants.py rdrop saved_models/thuc_rdrop 1.0      # + R-Drop, alpha 1.0
    python bench/neural_variants.py ngram saved_models/thuc_ngram 2        # + character bigram embeddings
    DATASET=reviews python bench/neural_variants.py ngram saved_models/rev_ngram 2   # the default job's data

Trains exactly as ``run.py train --train dev.txt --test test.txt --threads 1`` (4 layers, hidden 256,
4 epochs, the same 1,000 held-out dev rows), with ``Trainer._step`` replaced by one that adds:

* ``kd``: distillation. Soft targets are **out-of-fold** probabilities of a temperature-calibrated,
  weight-fitted log-linear mix of char_svm, char_nb and word_nb (5-fold cross-fitting on the
  training rows, so no target comes from a model that saw its text); the loss is
  ``(1 - alpha) * CE(gold) + alpha * CE(soft targets)``.
* ``rdrop``: R-Drop (Liang et al. 2021). Two forward passes with different dropout masks; the loss is
  the mean of the two cross-entropies plus ``alpha`` x their symmetric KL divergence (twice the compute).
* ``ngram``: character bigram embeddings added to BERT's input (as ZEN / fastText add n-grams): every
  bigram seen at least ``alpha`` times in the training texts gets a vector (zero at the start), added
  to the embedding of its first character; ``run.py train --bigrams alpha`` (now the default with
  alpha 2, see :mod:`cls_app.modeling.bigrams`). The other variants train without bigrams
  (``--bigrams 0``), as they were measured before bigrams became the default.

After training, the ``train --with-baselines`` steps run on the folder (six baselines, the ensemble
fitted on dev, the recommendation and the comparison on test), so one line reports BERT alone and
the recommended model; ``python bench/ensemble_variants.py`` then scores other member sets.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from task_sets import THUCNEWS  # noqa: E402  (bench/: the script's folder is on sys.path)

from cls_app.io.records import DataOptions, label_list  # noqa: E402
from cls_app.runtime.device import autocast  # noqa: E402
from cls_app.tasks import SingleLabel  # noqa: E402
from cls_app.text.batching import pad_batch  # noqa: E402
from cls_app.training import trainer  # noqa: E402
from cls_app.training.settings import BertSettings, ModelOptions, TrainJob, TrainSettings  # noqa: E402
from cls_app.workflow.main_job import run_main_job  # noqa: E402
from cls_app.workflow.settings import JobSettings  # noqa: E402

TEACHERS = ["char_svm", "char_nb", "word_nb"]


def soft_targets(data: DataOptions, seed: int) -> torch.Tensor:
    """Out-of-fold probabilities of the baselines' fitted log-linear mix, one row per training text."""
    from sklearn.model_selection import StratifiedKFold

    from cls_app import TextClassifier
    from cls_app.baselines.pipelines import scores_as_proba
    from cls_app.models.ensemble import combine, fit_temperature, fit_weights, log_probs

    train, _, _ = SingleLabel().load_splits(data, seed)
    labels = label_list(train)
    y = np.array([labels.index(x) for x in train.labels])
    texts = np.array(train.texts, dtype=object)
    oof = {n: np.zeros((len(y), len(labels))) for n in TEACHERS}
    for fit_rows, score_rows in StratifiedKFold(5, shuffle=True, random_state=seed).split(texts, y):
        for n in TEACHERS:
            est = TextClassifier(kind=n, seed=seed).estimator_for(SingleLabel(), pairs=False)
            est.fit(list(texts[fit_rows]), y[fit_rows])
            oof[n][score_rows] = scores_as_proba(est, list(texts[score_rows]), len(labels))
    lps = [log_probs(oof[n]) for n in TEACHERS]
    temps = [fit_temperature(lp, y) for lp in lps]
    q = combine(lps, fit_weights(lps, temps, y), temps)
    logging.info("teacher: out-of-fold accuracy %.4f on the training rows", (q.argmax(1) == y).mean())
    return torch.tensor(q, dtype=torch.float32)


def patched_step(variant: str, alpha: float, q: torch.Tensor | None):
    """A single-process ``Trainer._step`` with the variant's extra loss term."""

    def _step(self, idx: np.ndarray) -> None:
        st = self.state
        ids, mask = pad_batch([self.data.train_ids[j] for j in idx], self.data.pad_id, self.settings.pad_to)
        with autocast(self.device, self.amp_dtype):
            logits = self.net(ids, attention_mask=mask).float()
            loss = self.loss(logits, idx)
            if variant == "rdrop":
                logits2 = self.net(ids, attention_mask=mask).float()
                lp1, lp2 = logits.log_softmax(-1), logits2.log_softmax(-1)
                kl = 0.5 * ((lp1.exp() * (lp1 - lp2)).sum() + (lp2.exp() * (lp2 - lp1)).sum())
                loss = (loss + self.loss(logits2, idx)) / 2 + alpha * kl
            if variant == "kd":
                loss = (1 - alpha) * loss + alpha * -(q[torch.as_tensor(idx)] * logits.log_softmax(-1)).sum()
        (loss / self.loss.weight(idx)).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        st.step += 1
        st.seen += len(idx)
        st.tokens += int(mask.sum())
        st.running_loss += loss.item()
        st.running_n += self.loss.weight(idx)

    return _step


def experiment(name: str) -> tuple[DataOptions, ModelOptions, TrainSettings, int]:
    """``thucnews`` (default): the THUCNews split, run.py train's defaults, 1 thread. ``reviews``
    (``DATASET=reviews``): the default job's data in data/ and its settings
    (``EMBEDDED_DATA_DEFAULTS``: 2 layers, 64 tokens, 2 epochs), 2 threads, as ``python run.py train``."""
    if name == "thucnews":
        return (DataOptions(train=str(THUCNEWS / "dev.txt"), test=str(THUCNEWS / "test.txt")), ModelOptions(),
                TrainSettings(seed=42), 1)
    if name != "reviews":
        sys.exit("DATASET: thucnews or reviews")
    from cls_app.training.settings import EMBEDDED_DATA_DEFAULTS as d

    data = DataOptions(**{s: str(ROOT / "data" / f"{s}.csv") for s in ("train", "dev", "test")})
    return (data, ModelOptions(layers=d["layers"], max_len=d["max_len"]), TrainSettings(seed=42, epochs=d["epochs"]), 2)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    variant, out = sys.argv[1], sys.argv[2]
    alpha = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    if variant not in ("base", "kd", "rdrop", "ngram"):
        sys.exit("variant: base, kd, rdrop or ngram")
    data, model, train, threads = experiment(os.environ.get("DATASET", "thucnews"))
    q = soft_targets(data, 42) if variant == "kd" else None
    if variant in ("kd", "rdrop"):
        trainer.Trainer._step = patched_step(variant, alpha, q)
    model = replace(model, bigrams=int(alpha) if variant == "ngram" else 0)
    job = TrainJob(data=data, bert=BertSettings(model=model, train=train, threads=threads), out=out, overwrite=True)
    result = run_main_job(JobSettings(run=job, with_baselines=True))  # BERT, the other kinds, ensemble, comparison
    m = result.metrics
    train_wall = m["total_seconds"]
    pointer = result.recommendation or {}
    best = pointer["comparison"]
    print(json.dumps({"variant": variant, "alpha": alpha, "test": m.get("test"), "dev": m["dev"],
                      "train_s": m["train_seconds"], "wall_s": round(train_wall, 1),
                      "recommended": pointer["name"], "recommended_test_accuracy": best.get("accuracy"),
                      "versus": best.get("versus")}, default=str))


if __name__ == "__main__":
    main()
