"""GLUE: task definitions, the built-in sample generator, preprocessing script."""
