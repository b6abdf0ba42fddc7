"""Tests for cls_app.text.tokenizer: built-vocab mode, BERT-vocab mode (== BertTokenizer), files."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cls_app.errors import UserError
from cls_app.text import tokenizer as tokmod
from cls_app.text.tokenizer import SPECIAL_TOKENS, CharTokenizer

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# A small BERT-style vocab: specials, WordPiece pieces, some Chinese characters and words.
BERT_VOCAB = [
    *SPECIAL_TOKENS,
    "[unused1]",
    *"新闻中国的人大学生日本北京市发布会手机",
    *",.!?-#()[]，。！？、：“”《》",
    "hello", "he", "##llo", "##l", "##o", "world", "iphone", "##12", "12", "##3", "3",
    "ab", "##c", "a", "##b", "cafe", "gp", "##t", "4", "##o", "ａ", "１", "😀", "σ", "i", "##i",
]  # fmt: skip

CHINESE_SENTENCES = [
    "体验2D巅峰 倚天屠龙记十大创新概览",
    "60年铁树开花形状似玉米芯(组图)",
    "同步A股首秀：港股缩量回调",
    "苹果发布iPhone12，售价5499元起！",
    "北京市2023年高考分数线公布：本科线448分",
    "《流浪地球2》票房破40亿，GPT-4o也来凑热闹",
    "ＮＢＡ常规赛：湖人１０８－１０２胜勇士",
    "这部电影太好看了😀👍，强烈推荐！！！",
    "Café au lait 与 naïve 的中文怎么说？",
    "  新闻\t联播\n\u3000今日  要闻  ",
    "[CLS]特殊[MASK]标记[SEP]出现在文本里[unused1]",
    "",
]


def write_vocab(path: Path, tokens: list[str]) -> Path:
    path.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bert_vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small BERT vocab, plus every character of CHINESE_SENTENCES except a few."""
    extra = sorted(set("".join(CHINESE_SENTENCES)) - set("".join(BERT_VOCAB)) - set("玉港湖 \t\n\u3000"))
    return write_vocab(tmp_path_factory.mktemp("bert") / "vocab.txt", BERT_VOCAB + extra)


@pytest.fixture(scope="module")
def bert_pair(bert_vocab_file: Path):
    """(CharTokenizer, transformers.BertTokenizer) on the same vocab file, do_lower_case=True."""
    transformers = pytest.importorskip("transformers")
    return (
        CharTokenizer.from_file(bert_vocab_file),
        transformers.BertTokenizer(str(bert_vocab_file), do_lower_case=True),
    )


def bert_ids(bert, text: str, max_len: int) -> list[int]:
    return bert(text, truncation=True, max_length=max_len)["input_ids"]


# Random mixes of the kinds of text a Chinese classifier sees.
FRAGMENTS = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK, mostly out of vocab
    st.sampled_from("新闻中国的人大学生日本北京市发布会手机"),  # CJK in vocab
    st.sampled_from(["hello", "HeLLo", "helo", "world", "iphone12", "iPhone123", "abc", "GPT-4o", "gpt", "xyz"]),
    st.text(alphabet="abcdehlotwxyzABCHELO", min_size=1, max_size=8),  # Latin words
    st.text(alphabet="0123456789", min_size=1, max_size=6),  # digits
    st.sampled_from(list(",.!?;:'\"()[]{}-_#@$%^&*+=/\\|~`<>，。！？、；：“”‘’（）《》【】…—·")),
    st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E),  # full-width ASCII
    st.sampled_from(["😀", "👍🏽", "🇨🇳", "❤️", "🥰", "🫠", "™", "©", "①", "℃", "→"]),  # emoji, symbols
    st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\u3000", "\xa0", "\u2028"]),  # whitespace
    st.sampled_from(["café", "naïve", "e\u0301", "Σίσυφος", "İstanbul", "straße", "Ⅻ", "ﬁ"]),  # accents, case
    st.sampled_from([*SPECIAL_TOKENS, "[mask]", "[CLS", "\x00", "\u200b", "\ufffd", "\x7f"]),  # specials, controls
)
MIXED_TEXT = st.lists(FRAGMENTS, max_size=40).map("".join)


# ----------------------------------------------------------------------------------------
# Built-vocab mode
# ----------------------------------------------------------------------------------------


def test_special_tokens_come_first_in_order() -> None:
    tok = CharTokenizer.build(["新闻"])
    assert tok.vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.token_to_id == {t: i for i, t in enumerate(tok.vocab)}
    assert len(tok) == 7
    assert not tok.is_wordpiece


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("新闻联播", ["新", "闻", "联", "播"]),
        ("Hello World", ["hello", "world"]),
        ("iphone12", ["iphone", "12"]),
        ("GPT-4o", ["gpt", "-", "4", "o"]),
        ("2023年", ["2023", "年"]),
        ("ＡＢＣ１２３", ["abc", "123"]),
        ("ｉＰｈｏｎｅ１２，", ["iphone", "12", "，"]),
        ("好看😀👍🏽", ["好", "看", "😀", "👍", "🏽"]),
        ("Café naïve", ["cafe", "naive"]),
        (
            "苹果发布iPhone12，售价5499元！",
            ["苹", "果", "发", "布", "iphone", "12", "，", "售", "价", "5499", "元", "！"],
        ),
        ("  a\tb\n\u3000c ", ["a", "b", "c"]),
        ("a\x00b\u200bc", ["abc"]),
        ("x[CLS]y[mask]", ["x", "[CLS]", "y", "[", "mask", "]"]),
        ("", []),
    ],
)
def test_tokenize_built_mode(text: str, tokens: list[str]) -> None:
    tok = CharTokenizer.build(["新闻"])
    assert tok.tokenize(text) == tokens


def test_lowercase_false_keeps_case_and_accents() -> None:
    tok = CharTokenizer.build(["iPhone"], lowercase=False)
    assert tok.tokenize("iPhone Café ＡＢＣ") == ["iPhone", "Café", "ABC"]
    assert "iPhone" in tok.token_to_id


def test_unknown_tokens_become_unk() -> None:
    tok = CharTokenizer.build(["新闻 abc 12"])
    assert tok.encode("新闻abc") == [tok.cls_id, *tok.convert_tokens_to_ids(["新", "闻", "abc"]), tok.sep_id]
    unk, wen = tok.unk_id, tok.token_to_id["闻"]
    assert tok.encode("旧闻xyz 99") == [tok.cls_id, unk, wen, unk, unk, tok.sep_id]
    assert tok.convert_tokens_to_ids(["abc", "nope", "[MASK]"]) == [tok.token_to_id["abc"], tok.unk_id, tok.mask_id]


def test_build_orders_by_frequency_then_token() -> None:
    tok = CharTokenizer.build(["b a c c", "a c", "乙甲"])
    assert tok.vocab[5:] == ["c", "a", "b", "乙", "甲"]  # ties by code point: 乙 U+4E59 < 甲 U+7532


def test_min_freq_and_max_vocab() -> None:
    texts = ["的的的是是在", "的是了"]
    assert CharTokenizer.build(texts).vocab[5:] == ["的", "是", "了", "在"]
    assert CharTokenizer.build(texts, min_freq=2).vocab[5:] == ["的", "是"]
    assert CharTokenizer.build(texts, min_freq=5).vocab == SPECIAL_TOKENS
    assert CharTokenizer.build(texts, max_vocab=6).vocab == [*SPECIAL_TOKENS, "的"]
    assert CharTokenizer.build(texts, max_vocab=5).vocab == SPECIAL_TOKENS
    assert CharTokenizer.build(texts, min_freq=2, max_vocab=100).vocab[5:] == ["的", "是"]
    assert CharTokenizer.build([]).vocab == SPECIAL_TOKENS


def test_build_rejects_bad_limits() -> None:
    with pytest.raises(UserError, match="max_vocab"):
        CharTokenizer.build(["abc"], max_vocab=4)
    with pytest.raises(UserError, match="min_freq"):
        CharTokenizer.build(["abc"], min_freq=0)
    with pytest.raises(TypeError):
        CharTokenizer.build("a single string")


def test_specials_in_training_text_are_not_duplicated() -> None:
    tok = CharTokenizer.build(["[CLS][CLS]好[SEP]"])
    assert tok.vocab == [*SPECIAL_TOKENS, "好"]


@FAST
@given(texts=st.lists(MIXED_TEXT, max_size=8), seed=st.integers(0, 1000), min_freq=st.integers(1, 3))
def test_build_is_deterministic_and_order_independent(texts: list[str], seed: int, min_freq: int) -> None:
    shuffled = texts[:]
    random.Random(seed).shuffle(shuffled)
    a = CharTokenizer.build(texts, min_freq=min_freq)
    b = CharTokenizer.build(shuffled, min_freq=min_freq)
    assert a.vocab == b.vocab
    assert len(set(a.vocab)) == len(a.vocab)
    assert a.vocab[:5] == SPECIAL_TOKENS


@FAST
@given(texts=st.lists(MIXED_TEXT, min_size=1, max_size=6), max_vocab=st.integers(5, 40))
def test_max_vocab_keeps_the_most_frequent(texts: list[str], max_vocab: int) -> None:
    full = CharTokenizer.build(texts)
    capped = CharTokenizer.build(texts, max_vocab=max_vocab)
    assert len(capped) == min(max_vocab, len(full))
    assert capped.vocab == full.vocab[: len(capped)]


@FAST
@given(text=MIXED_TEXT)
def test_built_tokens_cover_the_normalised_text(text: str) -> None:
    tok = CharTokenizer.build([text])
    tokens = tok.tokenize(text)
    assert all(t and not any(c.isspace() for c in t) for t in tokens)
    # Every token of the training text is in the vocab, so nothing encodes to [UNK].
    assert tok.unk_id not in tok.encode(text, max_len=10_000) or "[UNK]" in text
    # Multi-character tokens are specials, Latin letter runs or digit runs.
    for t in tokens:
        assert len(t) == 1 or t in SPECIAL_TOKENS or t.isdigit() or t.isalpha(), t


@FAST
@given(text=st.text(alphabet="新闻abcXYZ019ＡＢｃ１２ ，,!😀", max_size=30))
def test_built_tokens_join_to_the_folded_lowercased_text(text: str) -> None:
    tok = CharTokenizer.build([text])
    folded = "".join(chr(ord(c) - 0xFEE0) if c.isalnum() and "\uff01" <= c <= "\uff5e" else c for c in text)
    assert "".join(tok.tokenize(text)) == folded.lower().replace(" ", "")


# ----------------------------------------------------------------------------------------
# encode / encode_batch / decode
# ----------------------------------------------------------------------------------------


def test_empty_and_blank_text_encode_to_cls_sep() -> None:
    tok = CharTokenizer.build(["新闻"])
    assert tok.encode("") == [tok.cls_id, tok.sep_id]
    assert tok.encode(" \t\n\u3000") == [tok.cls_id, tok.sep_id]
    assert tok.encode_batch(["", "新"]) == [[2, 3], [2, tok.token_to_id["新"], 3]]


def test_truncation_keeps_the_head() -> None:
    tok = CharTokenizer.build(["一二三四五六七八九十"])
    ids = tok.convert_tokens_to_ids(list("一二三四五六七八九十"))
    assert tok.encode("一二三四五六七八九十", max_len=5) == [tok.cls_id, *ids[:3], tok.sep_id]
    assert tok.encode("一二三四五六七八九十", max_len=2) == [tok.cls_id, tok.sep_id]
    assert tok.encode("一二三四五六七八九十", max_len=12) == [tok.cls_id, *ids, tok.sep_id]
    with pytest.raises(UserError, match="max_len"):
        tok.encode("一二", max_len=1)


@FAST
@given(text=MIXED_TEXT, max_len=st.integers(2, 50))
def test_truncation_property(text: str, max_len: int) -> None:
    tok = CharTokenizer.build([text, "新闻"])
    full = tok.encode(text, max_len=10_000)
    cut = tok.encode(text, max_len=max_len)
    assert len(cut) == min(max_len, len(full))
    assert cut[0] == tok.cls_id and cut[-1] == tok.sep_id
    assert cut[:-1] == full[: len(cut) - 1]
    assert full[1:-1] == tok.convert_tokens_to_ids(tok.tokenize(text))


@FAST
@given(texts=st.lists(MIXED_TEXT, max_size=5), max_len=st.integers(2, 30))
def test_encode_batch_matches_encode(texts: list[str], max_len: int) -> None:
    tok = CharTokenizer.build(texts)
    assert tok.encode_batch(texts, max_len) == [tok.encode(t, max_len) for t in texts]


def test_decode() -> None:
    tok = CharTokenizer.build(["苹果发布iPhone 12 pro，好！"])
    ids = tok.encode("苹果发布iPhone 12 pro，好！")
    assert tok.decode(ids) == "[CLS]苹果发布iphone 12 pro，好！[SEP]"
    assert tok.decode(ids, skip_special_tokens=True) == "苹果发布iphone 12 pro，好！"
    with pytest.raises(UserError, match="outside the vocab"):
        tok.decode([len(tok)])


def test_decode_glues_wordpiece_continuations(bert_pair) -> None:
    tok, _ = bert_pair
    assert tok.decode(tok.encode("hello 新闻 iphone12!"), skip_special_tokens=True) == "hello新闻iphone12!"
    assert tok.decode(tok.encode("ab world"), skip_special_tokens=True) == "ab world"


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["folder", "folder/nested", "my_vocab.txt"])
def test_save_then_from_file_round_trip(tmp_path: Path, target: str) -> None:
    texts = ["苹果发布iPhone12，售价5499元！", "新闻联播😀", "ＡＢＣ１２３"]
    tok = CharTokenizer.build(texts)
    written = tok.save(tmp_path / target)
    expected = tmp_path / target if target.endswith(".txt") else tmp_path / target / "vocab.txt"
    assert written == expected and written.is_file()
    assert written.read_text(encoding="utf-8") == "".join(f"{t}\n" for t in tok.vocab)
    for source in {written, written.parent} if not target.endswith(".txt") else {written}:
        loaded = CharTokenizer.from_file(source)
        assert loaded.vocab == tok.vocab
        assert loaded.token_to_id == tok.token_to_id
        assert loaded.encode_batch(texts) == tok.encode_batch(texts)


@FAST
@given(texts=st.lists(MIXED_TEXT, max_size=5))
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> None:
    tok = CharTokenizer.build(texts)
    loaded = CharTokenizer.from_file(tok.save(tmp_path_factory.mktemp("rt")))
    assert loaded.vocab == tok.vocab
    assert loaded.is_wordpiece == tok.is_wordpiece
    assert loaded.encode_batch(texts, 64) == tok.encode_batch(texts, 64)


def test_bert_vocab_round_trip(tmp_path: Path, bert_vocab_file: Path) -> None:
    tok = CharTokenizer.from_file(bert_vocab_file.parent)
    assert tok.is_wordpiece
    loaded = CharTokenizer.from_file(tok.save(tmp_path))
    assert loaded.vocab == tok.vocab
    assert loaded.encode_batch(CHINESE_SENTENCES) == tok.encode_batch(CHINESE_SENTENCES)


def test_from_file_reads_like_bert(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes("\ufeff[PAD]\r\n[UNK]  \n[CLS]\n[SEP]\n[MASK]\n\n新\n".encode())
    tok = CharTokenizer.from_file(path)
    assert tok.vocab == [*SPECIAL_TOKENS, "", "新"]
    assert tok.token_to_id["新"] == 6


def test_missing_vocab_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nope.txt"):
        CharTokenizer.from_file(tmp_path / "nope.txt")
    with pytest.raises(UserError, match="vocab.txt"):
        CharTokenizer.from_file(tmp_path)  # a folder without vocab.txt


def test_vocab_without_specials_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"\[MASK\]"):
        CharTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "新"])
    write_vocab(tmp_path / "vocab.txt", ["[PAD]", "[UNK]", "新"])
    with pytest.raises(UserError, match=r"vocab\.txt.*\[CLS\], \[SEP\], \[MASK\]"):
        CharTokenizer.from_file(tmp_path)
    with pytest.raises(UserError):
        CharTokenizer.from_file(write_vocab(tmp_path / "empty.txt", []))
    with pytest.raises(UserError, match="one-line"):
        CharTokenizer([*SPECIAL_TOKENS, "a\nb"])


def test_specials_need_not_come_first() -> None:
    tok = CharTokenizer(["a", "b", *reversed(SPECIAL_TOKENS)])
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (6, 5, 4, 3, 2)
    assert tok.encode("ab c") == [4, 5, 5, 3]
    assert tok.encode("a b c") == [4, 0, 1, 5, 3]


# ----------------------------------------------------------------------------------------
# BERT-vocab mode: equal to transformers.BertTokenizer
# ----------------------------------------------------------------------------------------


def test_wordpiece_examples(bert_pair) -> None:
    tok, _ = bert_pair
    assert tok.is_wordpiece
    expected = ["hello", "iphone", "##12", "##3", "he", "##l", "##o", "ab", "##c", "ab"]
    assert tok.tokenize("Hello iPhone123 helo abc ab") == expected
    assert tok.tokenize("xyz 中玉 GPT-4o") == ["[UNK]", "中", "[UNK]", "gp", "##t", "-", "4", "##o"]
    assert tok.tokenize("a" + "c" * 99) == ["a"] + ["##c"] * 99  # 100 characters: still WordPiece
    assert tok.tokenize("a" + "c" * 100) == ["[UNK]"]  # 101 characters: [UNK]


def test_matches_bert_tokenizer_on_chinese_sentences(bert_pair) -> None:
    tok, bert = bert_pair
    for text in CHINESE_SENTENCES:
        for max_len in (2, 8, 128):
            assert tok.encode(text, max_len) == bert_ids(bert, text, max_len), text
    batch = bert(CHINESE_SENTENCES, truncation=True, max_length=32)["input_ids"]
    assert tok.encode_batch(CHINESE_SENTENCES, 32) == batch


@settings(max_examples=300, deadline=None)
@given(text=MIXED_TEXT, max_len=st.integers(2, 64))
def test_matches_bert_tokenizer_on_mixed_text(bert_pair, text: str, max_len: int) -> None:
    tok, bert = bert_pair
    assert tok.encode(text, max_len) == bert_ids(bert, text, max_len)


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=20))
def test_matches_bert_tokenizer_on_any_unicode(bert_pair, text: str) -> None:
    tok, bert = bert_pair
    assert tok.encode(text, 512) == bert_ids(bert, text, 512)


@settings(max_examples=100, deadline=None)
@given(text=MIXED_TEXT)
def test_matches_bert_tokenizer_without_lowercasing(bert_vocab_file: Path, text: str) -> None:
    transformers = pytest.importorskip("transformers")
    tok = CharTokenizer.from_file(bert_vocab_file, lowercase=False)
    bert = _cased_bert(transformers, bert_vocab_file)
    assert tok.encode(text, 512) == bert_ids(bert, text, 512)


_CASED: dict[Path, object] = {}


def _cased_bert(transformers, path: Path):
    if path not in _CASED:
        _CASED[path] = transformers.BertTokenizer(str(path), do_lower_case=False)
    return _CASED[path]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=MIXED_TEXT, max_len=st.integers(2, 64))
def test_python_fallback_rules_match_bert_on_common_text(
    bert_pair, monkeypatch: pytest.MonkeyPatch, text: str, max_len: int
) -> None:
    """Without the Rust `tokenizers` package the Python character rules give the same ids."""
    tok, bert = bert_pair
    with monkeypatch.context() as m:
        m.setattr(tokmod, "_RUST_BERT", {True: None, False: None})
        m.setattr(tokmod, "_TABLES", {})
        fallback = CharTokenizer(tok.vocab)
        assert fallback.encode(text, max_len) == bert_ids(bert, text, max_len)


# ----------------------------------------------------------------------------------------
# Speed
# ----------------------------------------------------------------------------------------


def test_encode_batch_is_fast() -> None:
    rng = random.Random(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    extras = ["iPhone", "2023", "，", "：", "NBA", "（组图）", " "]
    texts = [
        "".join(rng.choice(chars) if rng.random() < 0.9 else rng.choice(extras) for _ in range(18))
        for _ in range(20_000)
    ]
    tok = CharTokenizer.build(texts)
    tok.encode_batch(texts[:100])
    start = time.perf_counter()
    ids = tok.encode_batch(texts, 64)
    rate = len(texts) / (time.perf_counter() - start)
    assert len(ids) == 20_000
    assert rate > 10_000, f"{rate:.0f} texts/s"
