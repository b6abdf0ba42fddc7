#!/usr/bin/env python3
"""CPU prediction throughput: this project's predict vs ``transformers.pipeline``, one run.

Same model, same 10,000 THUCNews test headlines, same process and thread count:

1. ``Classifier.predict`` (this project): float, and with ``quantize=True`` (int8 dynamic);
   the same exported to ONNX and run by ONNX Runtime (``--backend onnx``, float and int8);
   also the Hugging Face forward with our length-sorted batching (``fast=False``) to show
   where the speed comes from, and ``predict_file`` end to end (read test.txt, write a CSV).
2. ``pipeline("text-classification")`` on the same weights exported as a
   ``BertForSequenceClassification`` + ``BertTokenizerFast`` built from our ``vocab.txt``
   (``save_pretrained``), fed the same texts, with the same batch size and with its default.

Our model has no pooler ([CLS] -> linear); ``BertForSequenceClassification`` always applies
``tanh(W_p h + b_p)`` before its classifier. The export sets ``W_p = eps * I``, ``b_p = 0`` and
divides the classifier weight by ``eps`` (eps = 1e-3), so ``tanh(eps*h)/eps = h`` to ~1e-6
relative and the exported model predicts what ours predicts; the pooler's cost (one
hidden x hidden product per text) stays in the pipeline's timing, which is negligible.
The two tokenizers differ only on Latin/digit runs (ours keeps ``iphone12`` as ``iphone``+``12``,
WordPiece without ``##`` pieces maps an unknown word to [UNK]); the label agreement is printed.

Also printed: agreement of the quantized model's labels with the float model's on the test
file (the ``--quantize`` check: must be >= 99%) and each variant's accuracy.

Usage (not part of the tests; minutes on a busy 2-core machine)::

    python run.py train --train ../shared/data/thucnews/dev.txt --test ../shared/data/thucnews/test.txt \\
        --epochs 1 --bigrams 0 --out saved_models/bench_thucnews
    python bench/predict_speed.py --model saved_models/bench_thucnews
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cls_app import Classifier  # noqa: E402
from cls_app.fileio import write_json  # noqa: E402
from cls_app.inference.files import predict_file  # noqa: E402
from cls_app.io.records import load_labeled  # noqa: E402
from cls_app.runtime.device import configure_threads  # noqa: E402

EPS = 1e-3


def export_for_pipeline(model_dir: Path, out: Path) -> Path:
    """Save our weights as a BertForSequenceClassification + BertTokenizerFast (save_pretrained)."""
    from transformers import BertForSequenceClassification, BertTokenizerFast

    from cls_app.modeling.folder import load_model_dir

    loaded = load_model_dir(model_dir)
    ours = loaded.model
    if ours.bigram is not None:
        raise SystemExit(f"{model_dir} has character bigram embeddings, which a transformers pipeline cannot "
                         "run: train the bench model with --bigrams 0 (see the usage above)")
    hf = BertForSequenceClassification(ours.config).eval()
    missing, unexpected = hf.bert.load_state_dict(ours.bert.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("pooler.") for k in missing), (missing, unexpected)
    hidden = ours.config.hidden_size
    with torch.no_grad():
        hf.bert.pooler.dense.weight.copy_(torch.eye(hidden) * EPS)
        hf.bert.pooler.dense.bias.zero_()
        hf.classifier.weight.copy_(ours.classifier.weight / EPS)
        hf.classifier.bias.copy_(ours.classifier.bias)
    hf.save_pretrained(out)
    # transformers v5: the vocab file is passed as ``vocab`` (``vocab_file`` is silently ignored)
    tok = BertTokenizerFast(vocab=str(model_dir / "vocab.txt"), do_lower_case=True, model_max_length=loaded.max_len)
    if len(tok) != len(loaded.tokenizer):
        raise SystemExit(f"tokenizer export failed: {len(tok)} tokens, expected {len(loaded.tokenizer)}")
    tok.save_pretrained(out)
    return out


def model_flops(config, token_counts) -> float:
    """FLOPs (2 per multiply-add) the fast model needs for texts of these token counts (no padding).

    Every layer but the last: QKV, attention scores and weighted values, output projection and
    feed-forward for every token; the last layer: keys and values for every token, the rest for
    [CLS] only; then the head. Embedding look-ups, LayerNorm, softmax and GELU are not counted.
    The same useful work is credited to every variant (the pipeline computes more: padding, the
    pooler, every position in the last layer).
    """
    h, i, layers, c = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.num_labels
    total = 0.0
    for t in token_counts:
        full = 2 * t * h * 3 * h + 2 * 2 * t * t * h + 2 * t * h * h + 2 * 2 * t * h * i
        last = 2 * t * h * 2 * h + 2 * h * h + 2 * 2 * t * h + 2 * h * h + 2 * 2 * h * i
        total += (layers - 1) * full + last + 2 * h * c
    return total


def matmul_gflops(n: int = 1024, seconds: float = 3.0) -> float:
    """Best fp32 n x n matrix-product rate of torch at the current thread count, GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def timed(fn, n: int, repeat: int) -> tuple[float, object]:
    """Best throughput (items/s) over ``repeat`` runs, and the last result."""
    best, result = 0.0, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best, result


def main() -> None:
    default_data = ROOT.parent / "shared" / "data" / "thucnews" / "test.txt"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "saved_models" / "bench_thucnews"))
    ap.add_argument("--data", default=str(default_data), help="labeled file (default: THUCNews test.txt)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, help="torch threads for every variant (default: as predict picks)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant; the best is reported")
    ap.add_argument("--limit", type=int, help="use only the first N texts (quick check)")
    ap.add_argument("--skip-default-pipeline", action="store_true",
                    help="skip the pipeline at its default batch size (slow: one text per forward)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "predict_speed.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    threads = configure_threads(args.threads)  # the same for every variant, pipeline included

    model_dir = Path(args.model)
    data = load_labeled(args.data)
    texts, gold = data.texts, data.labels
    if args.limit:
        texts, gold = texts[: args.limit], gold[: args.limit]
    n = len(texts)
    bs = args.batch_size
    print(f"{n} texts from {args.data}; model {model_dir}; torch {torch.__version__}, "
          f"transformers {transformers.__version__}, {torch.get_num_threads()} threads, batch size {bs}")

    results: dict = {"texts": n, "threads": torch.get_num_threads(), "batch_size": bs, "machine": platform.processor()
                     or platform.machine(), "cpu_count": os.cpu_count(), "variants": {}}

    def record(name: str, rate: float, labels: list[str] | None) -> None:
        entry = {"texts_per_s": round(rate, 1)}
        if labels is not None:
            entry["accuracy"] = round(float(np.mean([a == b for a, b in zip(labels, gold, strict=True)])), 4)
        results["variants"][name] = entry
        print(f"  {name:<40s} {rate:8.1f} texts/s" + (f"   accuracy {entry['accuracy']:.4f}" if labels else ""),
              flush=True)

    warm = texts[:256]
    clf = Classifier.load(model_dir, batch_size=bs, threads=threads)
    clf.predict(warm)
    rate, preds = timed(lambda: clf.predict(texts), n, args.repeat)
    ours = [p.label for p in preds]
    record("ours (float)", rate, ours)

    quant = Classifier.load(model_dir, batch_size=bs, quantize=True, threads=threads)
    quant.predict(warm)
    rate, qpreds = timed(lambda: quant.predict(texts), n, args.repeat)
    quant_labels = [p.label for p in qpreds]
    record("ours --quantize (int8)", rate, quant_labels)
    agreement = float(np.mean([a == b for a, b in zip(ours, quant_labels, strict=True)]))
    results["quantized_agreement_with_float"] = round(agreement, 4)

    plain = Classifier.load(model_dir, batch_size=bs, fast=False, threads=threads)
    plain.predict(warm)
    rate, ppreds = timed(lambda: plain.predict(texts), n, args.repeat)
    record("ours, HF forward (sorted batches only)", rate, [p.label for p in ppreds])

    with tempfile.TemporaryDirectory() as tmp:  # ONNX Runtime, same weights (run.py export --quantize)
        from cls_app.modeling.onnx_export import export_onnx

        export_onnx(model_dir, Path(tmp) / "onnx", quantize=True)
        for name, quantize in (("ORT float (--backend onnx)", False), ("ORT int8 (--backend onnx --quantize)", True)):
            ort = Classifier.load(Path(tmp) / "onnx", batch_size=bs, threads=threads, backend="onnx",
                                  quantize=quantize)
            ort.predict(warm)
            rate, opreds = timed(lambda ort=ort: ort.predict(texts), n, args.repeat)
            labels = [p.label for p in opreds]
            record(name, rate, labels)
            results[f"{name} agreement_with_float"] = round(
                float(np.mean([a == b for a, b in zip(ours, labels, strict=True)])), 4)

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.txt"
        src.write_text("".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8")
        t0 = time.perf_counter()
        predict_file(clf, src, Path(tmp) / "out.csv")
        record("ours predict_file (txt -> csv, end to end)", n / (time.perf_counter() - t0), None)

        from transformers import pipeline

        export = export_for_pipeline(model_dir, Path(tmp) / "hf_export")
        pipe = pipeline("text-classification", model=str(export), tokenizer=str(export), device=-1)
        call = {"truncation": True, "max_length": clf.max_len}
        pipe(warm, batch_size=bs, **call)
        rate, out = timed(lambda: pipe(texts, batch_size=bs, **call), n, args.repeat)
        pipe_labels = [o["label"] for o in out]
        record(f"transformers pipeline (batch_size={bs})", rate, pipe_labels)
        results["pipeline_agreement_with_ours"] = round(
            float(np.mean([a == b for a, b in zip(ours, pipe_labels, strict=True)])), 4)
        if not args.skip_default_pipeline:
            rate, _ = timed(lambda: pipe(texts, **call), n, args.repeat)
            record("transformers pipeline (default batch_size)", rate, None)

    v = results["variants"]
    pipe_best = max(rate["texts_per_s"] for name, rate in v.items() if name.startswith("transformers"))
    pipe_same = v[f"transformers pipeline (batch_size={bs})"]["texts_per_s"]
    ratios = {
        "float_vs_pipeline_same_batch": v["ours (float)"]["texts_per_s"] / pipe_same,
        "quantized_vs_pipeline_same_batch": v["ours --quantize (int8)"]["texts_per_s"] / pipe_same,
        "float_vs_pipeline_best": v["ours (float)"]["texts_per_s"] / pipe_best,
        "quantized_vs_pipeline_best": v["ours --quantize (int8)"]["texts_per_s"] / pipe_best,
    }
    if "transformers pipeline (default batch_size)" in v:
        pipe_default = v["transformers pipeline (default batch_size)"]["texts_per_s"]
        ratios["float_vs_pipeline_default"] = v["ours (float)"]["texts_per_s"] / pipe_default
        ratios["quantized_vs_pipeline_default"] = v["ours --quantize (int8)"]["texts_per_s"] / pipe_default
    ort_rows = (("ort_float", "ORT float (--backend onnx)"), ("ort_int8", "ORT int8 (--backend onnx --quantize)"))
    for key, name in ort_rows:
        ratios[f"{key}_vs_pipeline_same_batch"] = v[name]["texts_per_s"] / pipe_same
    results["ratios"] = {k: round(x, 2) for k, x in ratios.items()}
    add_flops(results, model_dir, texts)
    print("\nratios (ours / pipeline throughput):")
    for k, x in results["ratios"].items():
        print(f"  {k:<36s} {x:5.2f}x")
    print(f"quantized vs float label agreement on {n} texts: {agreement:.4%} (--quantize requires >= 99%)")
    print(f"pipeline vs ours label agreement (same weights, tokenizers differ on Latin/digits): "
          f"{results['pipeline_agreement_with_ours']:.4%}")
    for k in [k for k in results if k.endswith("agreement_with_float")]:
        print(f"{k}: {results[k]:.4%}")
    write_json(args.out, results)
    print(f"written to {args.out}")


def add_flops(results: dict, model_dir: Path, texts: list[str]) -> None:
    """GFLOP/s of useful work per variant against this machine's fp32 matmul rate (same threads)."""
    from cls_app.modeling.folder import load_model_dir
    from cls_app.text.long_text import encode_texts

    loaded = load_model_dir(model_dir)
    enc = encode_texts(loaded.tokenizer, texts, loaded.max_len, loaded.long_text)
    per_text = model_flops(loaded.model.config, [len(s) for s in enc.seqs]) / len(texts)
    peak = matmul_gflops()
    results["flops_per_text"] = round(per_text)
    results["matmul_fp32_gflops"] = round(peak, 1)
    print(f"\nuseful work {per_text / 1e6:.1f} MFLOP per text; fp32 1024x1024 matmul: {peak:.1f} GFLOP/s "
          f"at {torch.get_num_threads()} thread(s)")
    print("| variant | texts/s | GFLOP/s | of matmul peak |\n| --- | ---: | ---: | ---: |")
    for name, entry in results["variants"].items():
        gflops = entry["texts_per_s"] * per_text / 1e9
        entry["gflops"] = round(gflops, 2)
        print(f"| {name} | {entry['texts_per_s']} | {gflops:.1f} | {gflops / peak:.0%} |")


if __name__ == "__main__":
    main()
