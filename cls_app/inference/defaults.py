"""Prediction defaults, in one light module the CLI reads without loading torch."""

DEFAULT_BATCH_SIZE = 64  # texts per forward pass for predict and the Classifier API
DEFAULT_CHUNK_ROWS = 8192  # rows held in memory, and the window sorted by length, at a time
EVAL_BATCH_SIZE = 128  # texts per forward pass when a folder is scored on a labeled file (evaluate, compare)
