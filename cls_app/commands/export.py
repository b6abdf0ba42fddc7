"""``run.py export``: write a model folder's network as ONNX (``model.onnx``; ``--quantize`` adds int8)."""

from __future__ import annotations

import argparse

NAME = "export"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .flags import add_model

    p = sub.add_parser(
        NAME, help="export a BERT or TextCNN model folder to ONNX for ONNX Runtime (--backend onnx)",
        description="Write MODEL/model.onnx (dynamic batch and sequence axes; the same logits as the PyTorch "
        "model), and with --quantize also MODEL/model.int8.onnx (ONNX Runtime dynamic int8 quantization). "
        "predict, evaluate and serve run them with --backend onnx. BERT and textcnn folders export; "
        "the other kinds have no network to export. See docs/deploy.md.",
    )
    add_model(p, follow=False)
    p.add_argument("--format", dest="export_format", choices=["onnx"], default="onnx",
                   help="export format (default: onnx)")
    p.add_argument("--quantize", action="store_true", help="also write model.int8.onnx (dynamic int8)")
    p.add_argument("--out", metavar="DIR", help="folder to write into (default: the model folder); config.json "
                   "and vocab.txt (a textcnn's classifier.json) are copied there, so DIR is servable with "
                   "--backend onnx on its own")
    return p


def run(args: argparse.Namespace) -> None:
    from ..models import load

    written = load(args.model, follow=False).export_onnx(args.out, quantize=args.quantize)
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
