"""``run.py distill``: train a fast student (textcnn, fasttext or bert) on what a teacher model says."""

from __future__ import annotations

import argparse

from ..workflow.distill import DistillSettings
from .flags import add_abstain, add_reading, add_settings, add_unlabeled, output_lock, read_options, settings_from

NAME = "distill"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, help="train a fast student model on a teacher's predictions (e.g. the recommended ensemble)",
        description="The teacher (any model folder; a training folder means the model its best.json recommends) "
        "predicts the --train texts and the --unlabeled ones; the student learns its softened probabilities "
        "(textcnn) or its decisions (fasttext, bert). --dev (labeled; default: a held-out part of --train) picks "
        "the student's best epoch and fits its calibration and abstention. The result is an ordinary model "
        "folder. See docs/fast_models.md.")
    p.add_argument("--teacher", required=True, help="the teacher model folder")
    p.add_argument("--train", required=True, help="labeled training file (its texts are what the teacher answers)")
    p.add_argument("--dev", help="labeled dev file (default: 10%% of --train held out)")
    add_unlabeled(p, "files of unlabeled texts (any format predict reads) the teacher also answers")
    p.add_argument("--out", required=True, help="the student's model folder to write")
    add_settings(p, DistillSettings)
    add_reading(p)
    add_abstain(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..inference.files import read_chunks
    from ..models.base import load
    from ..tasks import AbstainSettings, SingleLabel
    from ..workflow.distill import distill, read_unlabeled

    settings = settings_from(args, DistillSettings).check()
    abstain = settings_from(args, AbstainSettings).check()
    teacher = load(args.teacher)
    options = read_options(args)
    task = SingleLabel()
    train = task.read(args.train, options)
    if args.dev:
        dev = task.read(args.dev, options)
    else:
        train, dev = task.split(train, 0.1, settings.seed)
    unlabeled = read_unlabeled(args.unlabeled, lambda path: read_chunks(path, options))
    with output_lock(args.out):
        done = distill(teacher, train, dev, unlabeled, settings, abstain)
        done.student.save(args.out)
    dev_scores = getattr(done.student, "meta", {}).get("dev", {})
    print(f"{done.student.kind} student of {teacher.path or teacher.kind} ({teacher.kind}): learned from {done.rows} "
          f"texts ({done.unlabeled} unlabeled) in {done.seconds:.1f}s (teacher answers: {done.teacher_seconds:.1f}s)")
    if dev_scores:
        print(f"  dev accuracy {dev_scores.get('accuracy', float('nan')):.4f} macro-F1 "
              f"{dev_scores.get('macro_f1', float('nan')):.4f}")
    print(f"saved to {args.out}")
