"""Autocast precisions a run may ask for (a light module: the CLI lists them without loading torch)."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
