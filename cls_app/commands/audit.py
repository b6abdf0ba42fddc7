"""``run.py audit``: rows whose label is probably wrong, duplicates, conflicts and leakage."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError

NAME = "audit"


def add_parser(sub):
    from ..evaluation.audit import MODEL_KINDS, AuditOptions
    from ..training.settings import ModelOptions, TrainSettings, default
    from .options import add_model_size_options, add_reading_options

    opts = AuditOptions()
    p = sub.add_parser(
        NAME, help="find probably wrong labels, duplicates and dev/test leakage in a labeled file",
        description="Confident learning (cleanlab find_label_issues) on out-of-fold probabilities of a "
        "K-fold TF-IDF + LogisticRegression, exact and near duplicates, identical texts with different labels, "
        "and copies of train rows in --dev/--test. Writes OUT/label_issues.csv (ranked) and prints a summary.",
    )
    p.add_argument("--train", required=True, help="the labeled file to audit")
    p.add_argument("--dev", help="labeled dev file: train rows copied into it are reported as leakage")
    p.add_argument("--test", help="labeled test file: train rows copied into it are reported as leakage")
    p.add_argument("--folds", type=int, default=opts.folds,
                   help="K of the K-fold cross-validation (default: %(default)s)")
    p.add_argument("--model-kind", choices=MODEL_KINDS, default=opts.model_kind,
                   help="model cross-validated for the out-of-fold probabilities (default: %(default)s)")
    p.add_argument("--near-threshold", type=float, default=opts.near_threshold,
                   help="cosine similarity (char 2-3 gram TF-IDF) from which texts are near duplicates "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=opts.seed, help="seed of the folds and the model (default: %(default)s)")
    p.add_argument("--out", help="folder for label_issues.csv and audit.json (default: audit_<train file name>)")
    add_reading_options(p)
    g = p.add_argument_group("--model-kind bert", "the BERT fine-tuned on each fold (train's defaults)")
    add_model_size_options(g)
    g.add_argument("--max-len", type=int, default=default(ModelOptions, "max_len"),
                   help="max tokens per text (default: %(default)s)")
    g.add_argument("--epochs", type=int, default=default(TrainSettings, "epochs"), help="(default: %(default)s)")
    g.add_argument("--lr", type=float, default=default(TrainSettings, "lr"), help="(default: %(default)s)")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: one per core)")
    return p


def _bert_options(args) -> dict:
    from ..training.settings import ModelOptions, TrainSettings

    model = ModelOptions(layers=args.layers, hidden=args.hidden, heads=args.heads, intermediate=args.intermediate,
                         dropout=args.dropout, min_freq=args.min_freq, max_vocab=args.max_vocab, max_len=args.max_len)
    return {"bert": model, "bert_train": TrainSettings(epochs=args.epochs, lr=args.lr, seed=args.seed),
            "threads": args.threads}


def run(args) -> None:
    from ..evaluation.audit import REASONS, AuditOptions, audit, write_audit
    from ..io.records import load_labeled

    if not 0 < args.near_threshold <= 1:
        raise UserError(f"--near-threshold must be in (0, 1], got {args.near_threshold}")
    read = {"text_col": args.text_col, "label_col": args.label_col, "encoding": args.encoding, "fmt": args.fmt,
            "on_bad_row": args.on_bad_row}
    train = load_labeled(args.train, **read)
    others = [load_labeled(path, **read) for path in (args.dev, args.test) if path]
    options = AuditOptions(folds=args.folds, model_kind=args.model_kind, near_threshold=args.near_threshold,
                           seed=args.seed, **(_bert_options(args) if args.model_kind == "bert" else {}))
    result = audit(train, others, options, progress=True)
    out = Path(args.out) if args.out else Path(f"audit_{Path(args.train).stem}")
    paths = write_audit(result, out, options, train)
    counts = result.counts()
    print(f"audit of {args.train}: {len(train)} rows, {len(result.labels)} classes, {options.folds}-fold "
          f"out-of-fold accuracy {result.oof_accuracy():.4f}")
    for reason in REASONS:
        print(f"  {reason:<20}{counts[reason]:>7}")
    top = result.issues.head(10)
    if len(top):
        print("\nmost suspicious rows:")
        for r in top.itertuples():
            hint = f" -> {r.suggested_label}?" if r.suggested_label else ""
            text = r.text if len(r.text) <= 40 else r.text[:39] + "…"
            print(f"  row {r.row:<7} {r.reason:<19} {r.given_label}{hint}  {text}  {r.related}")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}")
