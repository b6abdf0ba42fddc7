"""Records to token ids and batches: the character tokenizer, long-text windows, the token-id cache, dynamic
padding and length grouping."""

from ..lazy import lazy_exports

_EXPORTS = {
    "CharTokenizer": "tokenizer",
    "EncodedTexts": "long_text",
    "LongTextOptions": "long_text",
    "encode_texts": "long_text",
    "get_or_build": "token_cache",
    "length_grouped_batches": "batching",
    "length_sorted_batches": "batching",
    "pad_batch": "batching",
    "pool_logits": "long_text",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
