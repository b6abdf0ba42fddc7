#!/usr/bin/env python3
"""Score the bigram-embedding BERT of ``neural_variants.py ngram`` against the plain one, alone and
in the ensemble with the six baselines (docs/ensembles.md, "The neural model itself").

    python bench/neural_variants.py base  saved_models/thuc_base        # plain BERT + baselines + ensemble
    python bench/neural_variants.py ngram saved_models/thuc_ngram 2     # BERT + bigram embeddings
    python bench/ngram_ensemble.py saved_models/thuc_ngram saved_models/thuc_base
    DATASET=reviews python bench/ngram_ensemble.py saved_models/rev_ngram saved_models/rev_base   # default job's data

The bigram folder is not a standard BERT folder, so it is loaded here: the BERT weights as usual,
the bigram table from the same safetensors file, the bigram list rebuilt from the training texts
exactly as in training. Its dev and test probabilities then go through the ensemble code of
``train --with-baselines`` (weights fitted on the 1,000 dev rows, cross-fitted dev score) with the
six baselines trained by the base run; McNemar's exact test compares every pair on test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import BertConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from neural_variants import attach_bigrams, experiment  # noqa: E402

from cls_app.evaluation.compare import mcnemar_exact  # noqa: E402
from cls_app.inference.ensemble import (  # noqa: E402
    EnsembleSettings,
    combine,
    cross_fitted_probs,
    fit_ensemble,
    log_probs,
    member_scores,
)
from cls_app.inference.predictor import load_predictor  # noqa: E402
from cls_app.io.records import load_splits  # noqa: E402
from cls_app.modeling.bert import BertClassifier  # noqa: E402
from cls_app.text.batching import pad_batch  # noqa: E402
from cls_app.text.tokenizer import CharTokenizer  # noqa: E402

BASELINES = ["char_svm", "char_lr", "char_nb", "word_svm", "word_lr", "word_nb"]


def bigram_bert_proba(folder: Path, train_texts: list[str], min_count: int):
    """A function texts -> probabilities (columns in the folder's label order) for the bigram BERT."""
    config = BertConfig.from_json_file(str(folder / "config.json"))
    model, tok = BertClassifier(config), CharTokenizer.from_file(folder / "vocab.txt")
    state = load_file(str(folder / "model.safetensors"))
    table = state.pop("bigram.table.weight")  # the app's own loader refuses the extra tensor
    model.load_state_dict(state)
    labels = [config.id2label[i] for i in range(config.num_labels)]
    max_len = int(json.loads((folder / "config.json").read_text())["cls_app"]["max_len"])
    attach_bigrams(model, tok, train_texts, min_count).table.weight.data.copy_(table)
    model.eval()

    def proba(texts: list[str]) -> np.ndarray:
        enc = [tok.encode(t, max_len=max_len) for t in texts]
        order = np.argsort([len(s) for s in enc], kind="stable")
        out = np.zeros((len(texts), len(labels)))
        with torch.inference_mode():
            for start in range(0, len(order), 128):
                rows = order[start : start + 128]
                ids, mask = pad_batch([enc[i] for i in rows], tok.pad_id)
                out[rows] = torch.softmax(model(ids, attention_mask=mask).float(), -1).numpy()
        return out

    return proba, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ngram", type=Path, help="folder of `neural_variants.py ngram`")
    ap.add_argument("base", type=Path, help="folder of `neural_variants.py base` (plain BERT + baselines/)")
    ap.add_argument("--min-count", type=int, default=2, help="as given to the ngram run")
    args = ap.parse_args()
    data = experiment(os.environ.get("DATASET", "thucnews"))[0]
    train, dev, test = load_splits(data, 42)
    proba, labels = bigram_bert_proba(args.ngram, train.texts, args.min_count)
    scores = {"bert_ngram": [log_probs(proba(d.texts)) for d in (dev, test)]}
    names = ["bert_base", *BASELINES]
    members = [load_predictor(args.base), *(load_predictor(args.base / "baselines" / n) for n in BASELINES)]
    dev_s, test_s = (member_scores(members, d.texts, labels, str(args.base)) for d in (dev, test))
    scores.update({n: [a, b] for n, a, b in zip(names, dev_s, test_s, strict=True)})
    yd = np.array([labels.index(x) for x in dev.labels])
    yt = np.array([labels.index(x) for x in test.labels])
    right = {n: s[1].argmax(1) == yt for n, s in scores.items()}
    dev_acc = {n: float((s[0].argmax(1) == yd).mean()) for n, s in scores.items()}
    settings = EnsembleSettings(seed=42)
    for bert in ("bert_base", "bert_ngram"):
        members = [bert, *BASELINES]
        fit = fit_ensemble([scores[m][0] for m in members], yd, settings)
        cv = cross_fitted_probs([scores[m][0] for m in members], yd, settings)
        test_p = combine([scores[m][1] for m in members], fit.weights, fit.temperatures, settings.combine)
        name = f"ensemble({bert} + six baselines)"
        right[name] = test_p.argmax(1) == yt
        dev_acc[name] = float((cv.argmax(1) == yd).mean())
    print("| model | dev acc (ensembles: cross-fitted) | test acc |\n| --- | ---: | ---: |")
    for n in right:
        print(f"| {n} | {dev_acc[n]:.4f} | {right[n].mean():.4f} |")
    pairs = [("bert_ngram", "bert_base"), ("bert_ngram", "char_svm"),
             ("ensemble(bert_ngram + six baselines)", "ensemble(bert_base + six baselines)"),
             ("ensemble(bert_ngram + six baselines)", "char_svm")]
    for a, b in pairs:
        print(f"{a} vs {b}: {json.dumps(mcnemar_exact(right[a], right[b]))}")


if __name__ == "__main__":
    main()
