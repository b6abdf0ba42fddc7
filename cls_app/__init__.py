"""cls_app: Chinese text classification with a fine-tuned BERT, offline-capable."""

__version__ = "0.1.0"
