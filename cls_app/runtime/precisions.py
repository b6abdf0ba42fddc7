"""Autocast precisions a run may ask for (a light module: the CLI lists them without loading torch)."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
INFERENCE_PRECISIONS = ("fp32", "bf16")  # a loaded model predicts on the CPU: no fp16 there; fp32 the default
