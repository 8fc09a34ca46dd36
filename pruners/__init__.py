"""Pruners shaped like optimizers: PLATON, magnitude (unstructured) and GPP (structured)."""
