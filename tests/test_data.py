"""Reading data files: formats, encodings, columns, bad rows, errors and splitting."""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cls_app.errors import UserError
from cls_app.io.encoding import detect_encoding
from cls_app.io.formats import FORMATS, detect_format, read_table
from cls_app.io.records import LabeledData, load_labeled, stratified_split

SHARED_THUCNEWS = Path(__file__).parents[1].parent / "shared/data/thucnews"
THUCNEWS_CLASSES = [
    "finance",
    "realty",
    "stocks",
    "education",
    "science",
    "society",
    "politics",
    "sports",
    "game",
    "entertainment",
]


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


# --------------------------------------------------------------------------- formats


def test_the_built_in_formats_are_registered():
    assert list(FORMATS)[:6] == ["csv", "tsv", "jsonl", "thucnews", "txt", "parquet"]


def test_parquet_files_predict_like_jsonl(tmp_path, capsys):
    """A Parquet file trains and predicts; its typed columns come back in the output; a file that is not Parquet
    is one clear error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .conftest import run_main, toy_texts

    texts, labels = toy_texts(80, 1)
    pq.write_table(pa.table({"id": list(range(80)), "text": texts, "label": labels}), tmp_path / "train.parquet",
                   row_group_size=16)
    rc, _, err = run_main(capsys, "-q", "baseline", "--train", str(tmp_path / "train.parquet"), "--out",
                          str(tmp_path / "bl"), "--models", "char_nb")
    assert rc == 0, err
    out = tmp_path / "out.jsonl"
    rc, _, err = run_main(capsys, "predict", "--model", str(tmp_path / "bl" / "char_nb"), "--input",
                          str(tmp_path / "train.parquet"), "--output", str(out), "--chunk-size", "7")
    assert rc == 0, err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == list(range(80)) and [r["text"] for r in rows] == texts
    assert sum(r["pred_label"] == r["label"] for r in rows) >= 76
    (tmp_path / "bad.parquet").write_text("text,label\na,b\n", encoding="utf-8")
    rc, _, err = run_main(capsys, "predict", "--model", str(tmp_path / "bl" / "char_nb"), "--input",
                          str(tmp_path / "bad.parquet"), "--output", str(tmp_path / "o.csv"))
    assert rc == 2 and "bad.parquet: not a readable Parquet file" in err


ROWS = [("这本书很好", "pos"), ("太差了，退货", "neg"), ('带"引号"和,逗号', "pos"), ("  前后空格  ", "neg"),
        ("表情😀和\x00NUL", "pos")]


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_registered_format_reads_the_same_rows_in_both_readers(tmp_path, name):
    """A format is one registry entry: the in-memory reader (train, evaluate) and the streaming one
    (predict) parse its files into the same texts, labels and lines."""
    from cls_app.io.formats import FORMATS as REGISTRY
    from cls_app.io.table_stream import TableReader

    spec = REGISTRY[name]
    texts = [t for t, _ in ROWS]
    labels = [y for _, y in ROWS] if spec.labeled else None
    path = write(tmp_path / f"rows{spec.extensions[0]}", spec.render(texts, labels))
    assert detect_format(path) == name
    table = read_table(path, require_labels=spec.labeled)
    chunks = list(TableReader(path, chunk_rows=2).chunks())
    streamed = [t for c in chunks for t in c.texts]
    assert [t for t in table["text"]] == streamed == texts
    assert list(table.index) == [line for c in chunks for line in c.lines]
    if spec.labeled:
        assert list(table["label"]) == [y for _, y in ROWS]


def test_csv(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n这本书很好,pos\n太差了,neg\n")
    data = load_labeled(path)
    assert isinstance(data, LabeledData)
    assert data.texts == ["这本书很好", "太差了"]
    assert data.labels == ["pos", "neg"]
    assert data.source == str(path)
    assert len(data) == 2


def test_tsv(tmp_path):
    path = write(tmp_path / "a.tsv", "label\tsentence\n1\t好, 很好\n0\t差\n")
    assert detect_format(path) == "tsv"
    data = load_labeled(path)
    assert data.texts == ["好, 很好", "差"]
    assert data.labels == ["1", "0"]


def test_jsonl(tmp_path):
    rows = [{"id": 1, "content": "好", "category": "体育"}, {"id": 2, "content": "差", "category": 3}]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    data = load_labeled(path)
    assert data.texts == ["好", "差"]
    assert data.labels == ["体育", "3"]


def test_json_array(tmp_path):
    path = write(tmp_path / "a.json", json.dumps([{"text": "好", "label": "p"}, {"text": "差", "label": "n"}]))
    assert detect_format(path) == "jsonl"
    assert load_labeled(path).labels == ["p", "n"]


def test_thucnews_without_class_txt(tmp_path):
    path = write(tmp_path / "train.txt", "中国队夺冠\t7\n股市大涨\t2\n")
    assert detect_format(path) == "thucnews"
    data = load_labeled(path)
    assert data.texts == ["中国队夺冠", "股市大涨"]
    assert data.labels == ["7", "2"]


def test_thucnews_with_class_txt(tmp_path):
    write(tmp_path / "class.txt", "\n".join(THUCNEWS_CLASSES) + "\n")
    path = write(tmp_path / "train.txt", "中国队夺冠\t7\r\n股市大涨\t2\r\n\r\n带\t制表符的标题\t0\r\n")
    data = load_labeled(path)
    assert data.texts == ["中国队夺冠", "股市大涨", "带\t制表符的标题"]
    assert data.labels == ["sports", "stocks", "finance"]


def test_thucnews_header_line_skipped(tmp_path):
    path = write(tmp_path / "train.txt", "text\tlabel\n中国队夺冠\tsports\n")
    assert load_labeled(path).labels == ["sports"]


def test_thucnews_label_out_of_range(tmp_path):
    write(tmp_path / "class.txt", "a\nb\n")
    path = write(tmp_path / "train.txt", "x\t0\ny\t5\n")
    with pytest.raises(UserError, match=r"train\.txt, row 2: label 5 is out of range"):
        load_labeled(path)


def test_plain_txt(tmp_path):
    path = write(tmp_path / "texts.txt", "第一条\n\n第二条, 有逗号\n")
    assert detect_format(path) == "txt"
    df = read_table(path, require_labels=False)
    assert list(df["text"]) == ["第一条", "第二条, 有逗号"]
    assert "label" not in df.columns
    assert list(df.index) == [1, 3]
    with pytest.raises(UserError, match="no labels"):
        load_labeled(path)


def test_explicit_format_overrides_extension(tmp_path):
    path = write(tmp_path / "data.txt", "a,b\n好,1\n")
    assert detect_format(path) == "txt"
    assert detect_format(path, "csv") == "csv"
    assert load_labeled(path, fmt="csv", text_col="a", label_col="b").labels == ["1"]
    with pytest.raises(UserError, match="unknown format"):
        detect_format(path, "xlsx")


def test_unknown_extension(tmp_path):
    path = write(tmp_path / "data.dat", "a\n")
    with pytest.raises(UserError, match="--format"):
        read_table(path)


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("gbk", "gb18030")],
)
def test_encodings_detected(tmp_path, encoding, expected):
    path = write(tmp_path / "a.csv", "text,label\n这部电影真好看,正面\n质量太差,负面\n", encoding)
    assert detect_encoding(path) == expected
    data = load_labeled(path)
    assert data.texts == ["这部电影真好看", "质量太差"]
    assert data.labels == ["正面", "负面"]


def test_bom_does_not_stick_to_header(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n好,1\n", "utf-8-sig")
    assert list(read_table(path).columns)[:2] == ["text", "label"]
    # even when the caller names utf-8 explicitly
    assert detect_encoding(path, "utf-8") == "utf-8-sig"
    assert load_labeled(path, encoding="utf-8").texts == ["好"]


def test_utf16_with_bom(tmp_path):
    path = write(tmp_path / "a.tsv", "text\tlabel\n好\t1\n", "utf-16")
    assert detect_encoding(path) == "utf-16"
    assert load_labeled(path).texts == ["好"]


def test_ascii_and_empty_are_utf8(tmp_path):
    assert detect_encoding(write(tmp_path / "a.csv", "text,label\n")) == "utf-8"
    assert detect_encoding(write(tmp_path / "b.csv", "")) == "utf-8"


def test_explicit_encoding(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n繁體中文,1\n", "big5")
    assert detect_encoding(path, "big5") == "big5"
    assert load_labeled(path, encoding="big5").texts == ["繁體中文"]


def test_explicit_encoding_that_does_not_fit(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nok,1\n好,2\n", "gbk")
    with pytest.raises(UserError, match=r"a\.csv, row 3: not valid utf-8"):
        load_labeled(path, encoding="utf-8")


def test_unknown_encoding_name(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nok,1\n")
    with pytest.raises(UserError, match="unknown encoding 'klingon'"):
        detect_encoding(path, "klingon")
    with pytest.raises(UserError, match="unknown encoding"):
        load_labeled(path, encoding="klingon")


def test_undecodable_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,label\nok,1\n\xff\xfe\xff,2\n")
    with pytest.raises(UserError) as err:
        detect_encoding(path)
    message = str(err.value)
    assert "utf-8" in message and "gb18030" in message
    assert "offset 16" in message and "line 3" in message
    assert "\n" not in message


# --------------------------------------------------------------------------- CSV details


def test_quoted_fields_with_commas_quotes_and_newlines(tmp_path):
    path = write(
        tmp_path / "a.csv",
        'text,label\n"好,很好",1\n"第一行\n第二行",0\n"他说""不错""",1\nNA,0\n',
    )
    data = load_labeled(path)
    assert data.texts == ["好,很好", "第一行\n第二行", '他说"不错"', "NA"]
    assert data.labels == ["1", "0", "1", "0"]
    # the index is the line each row starts on
    assert list(read_table(path).index) == [2, 3, 5, 6]


def test_integer_labels_stay_strings(tmp_path):
    path = write(tmp_path / "a.csv", "review,y\n好,1\n差,0\n一般,02\n")
    assert load_labeled(path).labels == ["1", "0", "02"]


def test_other_columns_kept(tmp_path):
    path = write(tmp_path / "a.csv", "id,content,class,extra\n7,好,p,x\n8,差,n,\n")
    df = read_table(path)
    assert list(df.columns) == ["id", "content", "class", "extra", "text", "label"]
    assert list(df["id"]) == ["7", "8"]
    assert list(df["extra"]) == ["x", ""]
    assert list(df["text"]) == ["好", "差"]


def test_only_string_column_is_the_text(tmp_path):
    path = write(tmp_path / "a.csv", "id,body,label\n1,好,p\n2,差,n\n")
    assert load_labeled(path).texts == ["好", "差"]


def test_ambiguous_text_column(tmp_path):
    path = write(tmp_path / "a.csv", "a,b,label\n好,差,p\n")
    with pytest.raises(UserError, match=r"--text-col") as err:
        load_labeled(path)
    assert "'a', 'b', 'label'" in str(err.value)
    assert load_labeled(path, text_col="b").texts == ["差"]


def test_missing_named_column_lists_columns(tmp_path):
    path = write(tmp_path / "a.csv", "sentence,tag\n好,p\n")
    with pytest.raises(UserError, match=r"no text column 'body'; the columns are 'sentence', 'tag'"):
        load_labeled(path, text_col="body", label_col="tag")
    with pytest.raises(UserError, match=r"no label column 'label'; the columns are 'sentence', 'tag'"):
        load_labeled(path, label_col="label")
    with pytest.raises(UserError, match=r"labels.*'sentence', 'tag'.*--label-col"):
        load_labeled(path)
    assert load_labeled(path, label_col="tag").labels == ["p"]


def test_unlabeled_csv_allowed_when_not_required(tmp_path):
    path = write(tmp_path / "a.csv", "text\n好\n差\n")
    df = read_table(path, require_labels=False)
    assert list(df["text"]) == ["好", "差"]
    assert "label" not in df.columns


def test_parser_error_reports_file_line(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\n"多\n行",1\n好,1,extra\n')
    with pytest.raises(UserError, match=r"a\.csv, row 4: cannot parse as CSV.*Expected 2 fields"):
        read_table(path)


def test_unquoted_comma_in_first_row_is_not_an_index(tmp_path):
    # pandas would silently take the extra first field as an index and shift the columns
    path = write(tmp_path / "a.csv", "text,label\n好,很好,1\n差,0\n")
    with pytest.raises(UserError, match=r"a\.csv, row 2: cannot parse as CSV: expected 2 fields.*saw 3"):
        read_table(path)


def test_unclosed_quote(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\nok,1\n"never closed,1\nmore,2\n')
    with pytest.raises(UserError, match=r"a\.csv, row 3: cannot parse as CSV"):
        read_table(path)


# --------------------------------------------------------------------------- errors


def test_empty_file(tmp_path):
    for name in ("a.csv", "a.tsv", "a.jsonl", "a.txt"):
        path = write(tmp_path / name, "")
        with pytest.raises(UserError, match="empty"):
            load_labeled(path)
    path = write(tmp_path / "blank.csv", "\n\n  \n")
    with pytest.raises(UserError, match="empty"):
        load_labeled(path)


def test_header_only(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n")
    with pytest.raises(UserError, match="no data rows"):
        load_labeled(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_labeled(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="not found"):
        detect_encoding(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="folder"):
        load_labeled(tmp_path)


def test_bad_json_line_number(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "好", "label": "p"}\n\n{"text": "差", "label": }\n')
    with pytest.raises(UserError, match=r"a\.jsonl, row 3: bad JSON"):
        load_labeled(path)


def test_json_line_not_an_object(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "好", "label": "p"}\n["差", "n"]\n')
    with pytest.raises(UserError, match=r"row 2: expected a JSON object"):
        load_labeled(path)


# --------------------------------------------------------------------------- bad rows


BAD_ROWS = "text,label\n好,p\n,n\n差,n\n   ,p\n还行,\n不错,p\n"  # bad rows on lines 3, 5, 6


def test_empty_text_is_an_error_with_row_number(tmp_path):
    path = write(tmp_path / "a.csv", BAD_ROWS)
    with pytest.raises(UserError, match=r"a\.csv, row 3: empty text"):
        load_labeled(path)


def test_missing_label_row_number(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n好,p\n差\n")
    with pytest.raises(UserError, match=r"a\.csv, row 3: missing label"):
        load_labeled(path)


def test_empty_text_row_number_jsonl_and_thucnews(tmp_path):
    jsonl = write(tmp_path / "a.jsonl", '{"text": "好", "label": "p"}\n{"text": null, "label": "p"}\n')
    with pytest.raises(UserError, match=r"row 2: empty text"):
        load_labeled(jsonl)
    thuc = write(tmp_path / "b.txt", "好\t1\n\n \t2\n")
    with pytest.raises(UserError, match=r"b\.txt, row 3: empty text"):
        load_labeled(thuc, fmt="thucnews")


@pytest.mark.parametrize("mode", ["skip", "warn"])
def test_bad_rows_skipped_and_counted(tmp_path, caplog, mode):
    path = write(tmp_path / "a.csv", BAD_ROWS)
    with caplog.at_level(logging.WARNING, logger="cls_app.io"):
        data = load_labeled(path, on_bad_row=mode)
    assert data.texts == ["好", "差", "不错"]
    assert data.labels == ["p", "n", "p"]
    assert "dropped 3 of 6 rows" in caplog.text
    if mode == "warn":
        assert "row 3" in caplog.text and "row 5" in caplog.text and "row 6" in caplog.text
    else:
        assert "row 3" not in caplog.text


def test_bad_on_bad_row_value(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n好,p\n")
    with pytest.raises(UserError, match="on_bad_row"):
        load_labeled(path, on_bad_row="ignore")


def test_all_rows_bad(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n,p\n好,\n")
    with pytest.raises(UserError, match="no usable rows"):
        load_labeled(path, on_bad_row="skip")


def test_label_stripped_text_keeps_inner_whitespace(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\n"  好 看\r\n", pos \n')
    data = load_labeled(path)
    assert data.labels == ["pos"]
    assert data.texts == ["  好 看"]


# --------------------------------------------------------------------------- splitting


def make_data(counts: dict[str, int]) -> LabeledData:
    texts, labels = [], []
    for label, count in counts.items():
        texts += [f"{label}-{i}" for i in range(count)]
        labels += [label] * count
    return LabeledData(texts, labels, "memory")


def test_stratified_split_proportions():
    data = make_data({"a": 600, "b": 300, "c": 100})
    train, test = stratified_split(data, 0.2, seed=1)
    assert len(train) == 800 and len(test) == 200
    assert Counter(test.labels) == {"a": 120, "b": 60, "c": 20}
    assert sorted(train.texts + test.texts) == sorted(data.texts)
    assert all(t.startswith(label) for t, label in zip(test.texts, test.labels, strict=True))


def test_split_is_deterministic_per_seed():
    data = make_data({"a": 50, "b": 50})
    first = stratified_split(data, 0.3, seed=7)
    again = stratified_split(data, 0.3, seed=7)
    other = stratified_split(data, 0.3, seed=8)
    assert first[1].texts == again[1].texts and first[0].texts == again[0].texts
    assert first[1].texts != other[1].texts


def test_split_falls_back_to_random_for_singletons(caplog):
    data = make_data({"a": 20, "b": 1})
    with caplog.at_level(logging.WARNING, logger="cls_app.io"):
        train, test = stratified_split(data, 0.25, seed=0)
    assert len(train) + len(test) == 21 and len(test) == 6
    assert "at random" in caplog.text


def test_split_rejects_bad_sizes():
    with pytest.raises(UserError):
        stratified_split(make_data({"a": 5}), 1.5, seed=0)
    with pytest.raises(UserError, match="too few"):
        stratified_split(make_data({"a": 1}), 0.5, seed=0)


# --------------------------------------------------------------------------- real THUCNews


def test_real_thucnews_dev():
    path = SHARED_THUCNEWS / "dev.txt"
    if not path.is_file():
        pytest.skip(f"shared data not present at {SHARED_THUCNEWS}")
    assert detect_format(path) == "thucnews"
    data = load_labeled(path)
    assert len(data) == 10_000
    names = (SHARED_THUCNEWS / "class.txt").read_text(encoding="utf-8").split()
    assert names == THUCNEWS_CLASSES
    counts = Counter(data.labels)
    assert set(counts) == set(THUCNEWS_CLASSES)
    assert all(count > 0 for count in counts.values())
    assert all(text.strip() for text in data.texts)
    assert not any("\t" in label for label in data.labels)
    train, test = stratified_split(data, 0.1, seed=0)
    assert len(test) == 1_000
    assert Counter(test.labels) == {name: counts[name] // 10 for name in counts}


# --------------------------------------------------------------------------- round trip

_TEXT = st.text(alphabet=st.sampled_from(list("好差ab ,\"\t\n\r;#'") + ["\u3000", "é"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_TEXT, st.sampled_from(["pos", "neg", "0"])), min_size=1, max_size=8))
def test_csv_round_trip_and_line_numbers(tmp_path_factory, rows):
    rows = [(text, label) for text, label in rows if text.strip()]
    assume(rows)
    path = tmp_path_factory.mktemp("rt") / "a.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)  # "\r\n" line ends: fields holding "\r" or "\n" get quoted
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    df = read_table(path)
    assert list(df["text"]) == [text for text, _ in rows]
    starts, line = [], 2
    for text, _ in rows:
        starts.append(line)
        line += 1 + text.count("\n") + text.replace("\r\n", "\n").count("\r")
    assert list(df.index) == starts
    data = load_labeled(path)
    assert data.texts == [text.strip("\r\n") for text, _ in rows]
    assert data.labels == [label for _, label in rows]


# --------------------------------------------------------------------------- streaming decode


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="ab\n好，é😀", max_size=40),
    st.binary(max_size=3),
    st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]),
    st.integers(min_value=1, max_value=9),
)
def test_block_decoding_matches_whole_file_decoding(tmp_path_factory, text, junk, encoding, block):
    """Decoding block by block finds the same bad byte (offset, line) and the same lines."""
    from cls_app.io.encoding import _bad_byte, _BadBytes, _iter_decoded, iter_lines

    raw = text.encode(encoding) + junk + "尾\n".encode(encoding)
    path = tmp_path_factory.mktemp("dec") / "f.txt"
    path.write_bytes(raw)
    expected = _bad_byte(raw, encoding)
    try:
        decoded = "".join(_iter_decoded(path, encoding, block_bytes=block))
    except _BadBytes as e:
        assert e.describe() == expected
    else:
        assert expected is None and decoded == raw.decode(encoding)
        assert "".join(iter_lines(path, encoding)) == decoded
