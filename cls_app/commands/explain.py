"""``run.py explain``: which characters pushed a model toward its prediction (or a chosen class)."""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError

NAME = "explain"
FORMATS = ("json", "csv", "html")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..inference.explain import ExplainOptions
    from ..io.records import ReadOptions
    from .flags import add_abstain, add_inference, add_model, add_settings, add_text_io

    p = sub.add_parser(
        NAME, help="score each character's push toward the predicted class",
        description="For each text: the prediction and a score per character toward the predicted class "
        "(or --target). BERT folders: Integrated Gradients (Captum) on the embeddings; baseline folders: "
        "each n-gram's TF-IDF value x weight. Prints a coloured view on a terminal; --output writes JSON, "
        "CSV (one row per token) or HTML.",
    )
    add_model(p)
    add_text_io(p, "file of texts (CSV/TSV/JSONL/Parquet/txt, as predict reads it)",
                "write the explanations here (.json, .csv or .html)")
    add_settings(p, ReadOptions, only=("text_col", "encoding"))
    p.add_argument("--format", "--output-format", dest="out_format", choices=FORMATS,
                   help="format of --output (default: from its extension)")
    p.add_argument("--target", help="explain this class instead of the predicted one")
    add_settings(p, ExplainOptions)
    add_inference(p, only=("threads", "script"))
    add_abstain(p)
    return p


def _texts(args) -> list[str]:
    if bool(args.text) == bool(args.input):
        raise UserError("give either --text (repeatable) or --input FILE")
    if args.text:
        empty = [i + 1 for i, t in enumerate(args.text) if not t.strip()]
        if empty:
            raise UserError(f"--text number {empty[0]} is empty; give a text to explain")
        return list(args.text)
    from ..io.table_stream import TableReader

    texts, lines = [], []
    for chunk in TableReader(args.input, text_col=args.text_col, encoding=args.encoding).chunks():
        texts.extend(chunk.texts)
        lines.extend(chunk.lines)
    empty = [line for line, t in zip(lines, texts, strict=True) if t is None or not str(t).strip()]
    if empty:
        raise UserError(f"{args.input}, row {empty[0]}: the text is empty ({len(empty)} empty rows in all); "
                        "remove them, explain needs a text in every row")
    if not texts:
        raise UserError(f"{args.input} holds no texts")
    return [str(t) for t in texts]


def _out_format(args) -> str | None:
    if not args.output:
        if args.out_format:
            raise UserError("--format needs --output")
        return None
    fmt = args.out_format or args.output.rsplit(".", 1)[-1].lower()
    if fmt not in FORMATS:
        raise UserError(f"cannot tell the format of --output {args.output}: use a .json, .csv or .html name "
                        "or --format")
    return fmt


def _write(path: str, fmt: str, explanations: list, model: str) -> None:
    from ..fileio import atomic_open, write_json, write_text
    from ..inference.explain import CSV_COLUMNS, csv_rows, explanations_html

    if fmt == "json":
        write_json(path, [e.to_dict() for e in explanations])
    elif fmt == "html":
        write_text(path, explanations_html(explanations, title=f"explanations: {model}"))
    else:
        import csv

        with atomic_open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(csv_rows(explanations))


def _print(explanations: list) -> None:
    from ..inference.explain import ansi_text, plain_text

    tty = sys.stdout.isatty()
    for i, e in enumerate(explanations):
        c = e.completeness
        of = f" of {c['target_difference']:.3g}" if "target_difference" in c else ""
        abstained = f"  abstains: {e.reason} (ood score {e.ood_score})" if e.abstained else ""
        print(f"[{i}] {e.label} ({e.prob:.3f})  explaining {e.target}  completeness error {c['error']:.3g}"
              f"{of}  {e.details.get('seconds', 0):.2f}s{abstained}")
        print("  " + ansi_text(e) if tty else "  " + e.text)
        if not tty:
            print(plain_text(e))


def run(args: argparse.Namespace) -> None:
    from ..inference.explain import ExplainOptions, explain_texts, explainer_for
    from ..models.base import load
    from .flags import inference_options, settings_from

    fmt = _out_format(args)
    texts = _texts(args)
    model = load(args.model, follow=args.follow, prefer=args.prefer, options=inference_options(args))
    explainer = explainer_for(model, settings_from(args, ExplainOptions))
    explanations = explain_texts(explainer, texts, args.target, progress=True)
    if fmt:
        _write(args.output, fmt, explanations, args.model)
        seconds = sum(e.details["seconds"] for e in explanations)
        worst = max(e.completeness["error"] for e in explanations)
        print(f"{len(explanations)} explanation(s) written to {args.output} ({explainer.method}; "
              f"{seconds / len(explanations):.3f} s per text; largest completeness error {worst:.3g})")
    else:
        _print(explanations)
