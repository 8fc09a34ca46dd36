"""Data handling: GLUE readers, task definitions, canonical JSON batches, metrics."""
