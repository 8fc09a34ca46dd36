"""User-facing errors: one line, exit status 2, no traceback.

Code anywhere in the toolkit raises `UserError` for problems the user can fix
(bad flag, missing file, malformed row). Entry points wrap `main()` in
`run_cli`, which prints the message on one line and exits with status 2.
Unexpected exceptions exit with status 1; `--debug` shows their traceback.
A run stopped by a signal raises `Interrupted`, which exits with 128 + the
signal's number (130 for SIGINT, 143 for SIGTERM). `describe` gives the line
and status of any exception, for a run's own log file (training.run_dir).
"""
import argparse
import os
import sys


class UserError(Exception):
    """An error in the user's input; its message says what and how to fix it."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; `status` is the exit status (128 + the signal number). Like
    KeyboardInterrupt, no `except Exception` in a library swallows it when a signal handler raises it."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def describe(err: BaseException) -> tuple:
    """(the one line `run_cli` prints for `err`, its exit status)."""
    if isinstance(err, (UserError, Interrupted)):
        return f"error: {err}", getattr(err, "status", 2)
    if isinstance(err, KeyboardInterrupt):
        return "error: interrupted", 130
    message = " ".join(str(err).split()) or type(err).__name__
    return f"internal error: {type(err).__name__}: {message} (rerun with --debug for the traceback)", 1


MAX_THREADS_PER_CORE = 4      # a thread count above this many per CPU core is refused (check_thread_count)


def check_thread_count(threads: int, flag: str) -> None:
    """Refuse a CPU thread count below 0 or far above the machine's cores (torch, numba and ONNX Runtime
    crash or fail to load with millions of threads) before anything is started, naming `flag`."""
    cores = os.cpu_count() or 1
    limit = max(MAX_THREADS_PER_CORE * cores, 64)
    if threads < 0:
        raise UserError(f"{flag} {threads} must be >= 0 (0: the libraries' defaults)")
    if threads > limit:
        raise UserError(f"{flag} {threads} is too many threads: this machine has {cores} CPU cores; give at most "
                        f"{limit}, or 0 for the libraries' defaults")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag ends as one line on stderr with exit status 2 (no usage block)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def run_cli(main, argv=None):
    """Run `main(argv)` and turn exceptions into exit codes (2 user, 1 internal)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # the entry points' --debug flag (or argparse's abbreviation of it, --deb...): show the traceback instead
    debug = any(arg.startswith("--deb") and "--debug".startswith(arg) for arg in argv)
    try:
        code = main(argv)
    except (Interrupted, KeyboardInterrupt) as err:
        line, status = describe(err)
        print(line, file=sys.stderr)
        sys.exit(status)
    except Exception as err:  # noqa: BLE001 - last-resort boundary of the CLI
        if debug:
            raise
        line, status = describe(err)
        print(line, file=sys.stderr)
        sys.exit(status)
    sys.exit(code or 0)
