#!/usr/bin/env python3
"""Training throughput of scratch-BERT sizes on the embedded review data, in CPU time (docs/ensembles.md).

    python run.py prepare-data
    python bench/model_size_speed.py [--threads 1] [--steps 30]

For each (layers, hidden, max-len): 5 warm-up steps, then ``--steps`` optimizer steps of batch 32
over length-grouped batches (as ``run.py train``); prints samples per CPU-second (``process_time``,
robust to other processes time-slicing the cores) and per wall-second.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from cls_app.io.records import load_labeled  # noqa: E402
from cls_app.modeling.bert import BertClassifier, scratch_config  # noqa: E402
from cls_app.text.batching import pad_batch  # noqa: E402
from cls_app.text.long_text import LongTextOptions, encode_texts  # noqa: E402
from cls_app.text.tokenizer import CharTokenizer  # noqa: E402
from cls_app.training.trainer import epoch_batches  # noqa: E402

SIZES = [(4, 256, 64), (4, 256, 48), (2, 256, 64), (3, 256, 64), (4, 256, 32), (2, 256, 48), (4, 256, 64)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "train.csv")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = load_labeled(str(args.data))
    tok = CharTokenizer.build(d.texts, min_freq=2, max_vocab=21128)
    labels = sorted(set(d.labels))
    y = torch.tensor([labels.index(x) for x in d.labels])
    for layers, hidden, max_len in SIZES:
        seqs = encode_texts(tok, d.texts, max_len, LongTextOptions().resolved(max_len)).seqs
        torch.manual_seed(0)
        model = BertClassifier(scratch_config(len(tok), labels, layers=layers, hidden=hidden, heads=4,
                                              max_position=512))
        opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
        batches = epoch_batches([len(s) for s in seqs], 32, 0, 0, True)
        model.train()
        n = 0
        for i, b in enumerate(batches[: 5 + args.steps]):
            if i == 5:
                t0, c0, n = time.perf_counter(), time.process_time(), 0
            ids, mask = pad_batch([seqs[j] for j in b], tok.pad_id)
            torch.nn.functional.cross_entropy(model(ids, attention_mask=mask), y[b]).backward()
            opt.step()
            opt.zero_grad()
            n += len(b)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"layers {layers} hidden {hidden} max-len {max_len} threads {args.threads}: "
              f"{n / cpu:.1f} samples per CPU-second, {n / wall:.1f} samples per wall-second", flush=True)


if __name__ == "__main__":
    main()
