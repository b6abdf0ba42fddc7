#!/usr/bin/env python3
"""The trainer on a CUDA GPU: row-sparse embedding gradients, fused AdamW and bf16 autocast there.

    python bench/gpu_check.py --data ../shared/data/thucnews      # needs a CUDA device

1. ``RowSparseAdamW`` on CUDA (fused) against ``torch.optim.AdamW`` on dense gradients: an embedding
   table and a linear layer, 30 steps of random batches with clipping; the largest difference.
2. The default BERT (4 layers, hidden 256, bigram embeddings) trained by the app's ``Trainer`` on
   THUCNews ``dev.txt`` (10,000 headlines) for 2 epochs, ``--precision auto`` (bf16 autocast on
   the GPU), with dense and with row-sparse embedding gradients: samples/s and accuracy on
   ``test.txt``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cls_app.io.records import label_list, load_labeled  # noqa: E402
from cls_app.runtime.device import RowSparseAdamW, clip_grad_norm  # noqa: E402
from cls_app.runtime.engine import predict_logits  # noqa: E402
from cls_app.training.components import build_model, build_tokenizer  # noqa: E402
from cls_app.training.settings import ModelOptions, TrainSettings  # noqa: E402
from cls_app.training.trainer import TrainData, Trainer  # noqa: E402


def optimizer_parity(device: torch.device, steps: int = 30) -> float:
    torch.manual_seed(0)
    dense = torch.nn.Sequential(torch.nn.Embedding(500, 32), torch.nn.Linear(32, 4)).to(device)
    sparse = torch.nn.Sequential(torch.nn.Embedding(500, 32, sparse=True), torch.nn.Linear(32, 4)).to(device)
    sparse.load_state_dict(dense.state_dict())
    opt_d = torch.optim.AdamW(dense.parameters(), lr=0.01, weight_decay=0.01, fused=True)
    opt_s = RowSparseAdamW(sparse.parameters(), lr=0.01, weight_decay=0.01, fused=True)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = torch.randint(0, 500, (8, 12), generator=gen).to(device)
        for model, opt, clip in ((dense, opt_d, torch.nn.utils.clip_grad_norm_), (sparse, opt_s, clip_grad_norm)):
            model(ids).sum(dim=1).pow(2).mean().backward()
            clip(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
    pairs = zip(dense.parameters(), sparse.parameters(), strict=True)
    return max(float((a - b).detach().abs().max()) for a, b in pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "thucnews")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    device = torch.device("cuda")
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                    "optimizer_max_abs_difference": optimizer_parity(device)}
    train, test = load_labeled(str(args.data / "dev.txt")), load_labeled(str(args.data / "test.txt"))
    labels = label_list(train)
    l2i = {c: i for i, c in enumerate(labels)}
    opts = ModelOptions()
    tok = build_tokenizer(opts, train)
    torch.manual_seed(42)
    model0 = build_model(opts, tok, train, labels)
    ids, y = tok.encode_batch(train.texts, opts.max_len), [l2i[c] for c in train.labels]
    test_ids, test_y = tok.encode_batch(test.texts, opts.max_len), np.array([l2i[c] for c in test.labels])
    pick = np.random.default_rng(0).permutation(len(test_ids))[:1000]  # test.txt is sorted by class
    dev_ids, dev_y = [test_ids[i] for i in pick], [int(test_y[i]) for i in pick]
    for name, sparse in (("dense", False), ("sparse", True)):
        model = copy.deepcopy(model0)
        settings = dataclasses.replace(TrainSettings(epochs=args.epochs, patience=0, progress=False, device="cuda"),
                                       sparse_embeddings=sparse)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = Trainer(model, TrainData(ids, y, dev_ids, dev_y, labels, tok.pad_id), settings).run()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        logits = predict_logits(model, test_ids, tok.pad_id, 256, device=device)
        report[name] = {"seconds": round(seconds, 1), "samples_per_s": round(len(ids) * args.epochs / seconds, 1),
                        "test_accuracy": round(float((logits.argmax(1) == test_y).mean()), 4),
                        "best_dev_accuracy": result.best_dev.get("accuracy"), "tables_sparse_after": [
                            t.sparse for t in (model.bert.embeddings.word_embeddings, model.bigram.table)]}
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
