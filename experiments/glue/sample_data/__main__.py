"""Entry point of `python -m experiments.glue.sample_data` (download.sh's sample fallback)."""
import sys

from data_utils.errors import run_cli

from .cli import main

if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
