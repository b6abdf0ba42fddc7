#!/usr/bin/env python3
"""Time one training step of a model folder's BERT with AdamW for-each vs fused (docs/ensembles.md).

    python bench/optimizer_step.py saved_models/default [--threads 2] [--steps 50]

Random ids (batch 32 x 40 tokens), cross-entropy, backward, optimizer step, zero_grad; the first
10 steps are not timed. With bigram embeddings most of a small model's parameters are the bigram
table, which AdamW updates densely every step: that is where the fused kernel helps.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from cls_app.modeling.bert import parameter_groups  # noqa: E402
from cls_app.modeling.folder import load_model_dir  # noqa: E402


def step_ms(model: torch.nn.Module, fused: bool, steps: int) -> float:
    torch.manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (32, 40))
    y = torch.randint(0, model.config.num_labels, (32,))
    opt = torch.optim.AdamW(parameter_groups(model, 0.01), lr=1e-5, fused=fused)
    for i in range(steps + 10):
        if i == 10:
            t0 = time.perf_counter()
        torch.nn.functional.cross_entropy(model(ids), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return (time.perf_counter() - t0) / steps * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a BERT model folder (e.g. saved_models/default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model_dir(args.model).model.train()
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {n / 1e6:.1f}M parameters, {args.threads} thread(s)")
    for fused in (False, True):
        print(f"AdamW {'fused' if fused else 'for-each'}: {step_ms(model, fused, args.steps):.1f} ms/step")


if __name__ == "__main__":
    main()
