"""Files to records: encodings, file formats, labeled records and splits, streaming tables, the default data,
pre-training corpora."""

from ..lazy import lazy_exports

_EXPORTS = {
    "Corpus": "corpus",
    "DataOptions": "records",
    "FORMATS": "formats",
    "Format": "formats",
    "LabeledData": "records",
    "ReadOptions": "records",
    "LabelSetData": "labels",
    "TASKS": "labels",
    "RowChunk": "table_stream",
    "TableReader": "table_stream",
    "TableWriter": "table_stream",
    "as_text": "records",
    "detect_encoding": "encoding",
    "detect_format": "formats",
    "iter_lines": "encoding",
    "join_pair": "pairs",
    "label_ids": "records",
    "label_list": "records",
    "load_label_sets": "labels",
    "load_labeled": "records",
    "output_format": "table_stream",
    "prepare_default_data": "default_data",
    "prepare_peoples_daily": "corpus",
    "read_bytes": "encoding",
    "read_corpus": "corpus",
    "read_table": "formats",
    "register_format": "formats",
    "stratified_split": "records",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
