"""The multi-task model (shared encoder + task heads), its loading, saving and evaluation."""
