"""A run owns its --output_dir, and ends cleanly on errors and signals.

    with RunDirectory(args, argv) as owner:        train.main's whole body; on any exit the error also goes to
        owner.claim(dist_info, resumed, path)     the log file, a run that failed before writing any output
        ...                                       leaves nothing behind (the directory if it created it; else
                                                  what it added, and moved-aside files come back), the lock is
                                                  released and the signal handlers are restored.
    claim, on the main process:
        - refuses an --output_dir, --log_file or --tensorboard_logdir equal to or inside an input
          (--init_checkpoint, --teacher_model_path, --kd_teacher, --data_dir, --model_ckpt, --task_def);
        - OUT/.lock: an exclusive fcntl.flock held for the whole run, the file naming the holder (pid,
          host, start). The kernel drops the lock when its process dies, so a lock file left by a dead
          process is taken over, with a warning in the log; a live holder makes the run refuse to start;
        - OUT/run.json: the run id, its start and command line. A directory holding another run's
          outputs (checkpoints, model/, best_model/, scores, another run.json, a config.json) is refused,
          unless --overwrite_output_dir (they are moved to OUT/previous-<time>/, never deleted) or
          --resume/--model_ckpt continues that very run (the checkpoint's config holds its run id);
        - SIGTERM/SIGINT handlers (every process).
    owner.pending_signal(dist_info)   the loop's check after each update: after a SIGTERM/SIGINT the update in
                                      progress is finished and the loop stops (run_state.stop_after_signal
                                      checkpoints it and exits 143 / 130). Before the first update is done, or
                                      on a second signal, the run stops at once.

Other processes of a distributed run take no lock and check nothing: only rank 0 writes the directory.
No module-level state: everything a run set up hangs on its RunDirectory.
"""
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback

from data_utils import files
from data_utils.errors import Interrupted, UserError, describe
from data_utils.files import write_json_atomic
from modeling import pretrained
from data_utils.distributed import broadcast_flag

logger = logging.getLogger("train")
LOCK, RUN_FILE = ".lock", "run.json"
OUTPUT_NAMES = ("model", "best_model", "model_pruned", "best_model_pruned", "dev_metrics.json", "best_metrics.json",
                "metrics.jsonl", "rank_checksums.json", "sparsity_report.json", "glue_submission")
# Written by every run from its start (bookkeeping, not an output): found before the run, it is somebody
# else's file the run would overwrite (config.json: a Hugging Face model directory).
BOOKKEEPING_NAMES = ("config.json",)
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


def is_output(name: str) -> bool:
    """Whether an entry of an output directory is a run's output (not its log or bookkeeping)."""
    return name in OUTPUT_NAMES or bool(_CHECKPOINT.match(name)) or "_scores_" in name or "_predictions_" in name


def inside(path: str, parent: str) -> bool:
    """`path` equals `parent` or lies below it (both real paths)."""
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def input_paths(args) -> list:
    """[(flag, value as given, real path)] of the files and directories the run reads."""
    found = []
    for flag, value in (("--init_checkpoint", args.init_checkpoint),
                        ("--teacher_model_path", getattr(args, "teacher_model_path", None)),
                        ("--kd_teacher", getattr(args, "kd_teacher", None)),
                        ("--data_dir", args.data_dir), ("--model_ckpt", args.model_ckpt),
                        ("--task_def", getattr(args, "task_def", None))):
        path = value
        if flag == "--init_checkpoint" and value == pretrained.BUNDLED_MODEL:
            try:
                path = pretrained.bundled_model_path()
            except UserError:        # reported where the model is loaded
                continue
        if path and os.path.exists(path):
            found.append((flag, value, os.path.realpath(path)))
    return found


def written_paths(args) -> list:
    """[(flag, path)] of what the run writes: its output directory, log file and TensorBoard directory."""
    out = args.output_dir
    log = args.log_file if os.path.isabs(args.log_file) else os.path.join(out, args.log_file)
    written = [("--output_dir", out), ("--log_file", log)]
    if getattr(args, "tensorboard", False):
        logdir = args.tensorboard_logdir if os.path.isabs(args.tensorboard_logdir) \
            else os.path.join(out, args.tensorboard_logdir)
        written.append(("--tensorboard_logdir", logdir))
    return written


NOT_A_LOG = (".json", ".jsonl", ".safetensors", ".bin", ".pt", ".onnx", ".tsv", ".yml", ".yaml")


def run_writes(name: str, args) -> bool:
    """Whether the run may write, replace or move the entry `name` of its --output_dir: its outputs, checkpoints,
    bookkeeping (config.json, run.json, the lock) and earlier runs' previous-<time>/ folders."""
    return is_output(name) or name in (RUN_FILE, LOCK, *BOOKKEEPING_NAMES) or name.startswith("previous-")


def refuse_writing_inputs(args) -> None:
    """Nothing the run reads is written to: the output directory, log file and TensorBoard directory each
    lie outside every input (the --resume checkpoint lies in the run's own directory and is not one), no
    input lies where the run writes inside --output_dir (its model/, best_model/, checkpoint-N/, ...: the
    checkpoint --model_ckpt continues is the one exception, and checkpoint rotation keeps it), and the log
    file and TensorBoard directory are not among the run's other outputs."""
    files.refuse_writing_inputs(written_paths(args), [(flag, value) for flag, value, _ in input_paths(args)])
    out = os.path.realpath(args.output_dir) if args.output_dir else None
    if not out:
        return
    for flag, value, real in input_paths(args):
        if flag == "--model_ckpt" or real == out or not inside(real, out):
            continue
        name = os.path.relpath(real, out).split(os.sep)[0]
        if run_writes(name, args):
            raise UserError(f"{flag} {value} lies in {os.path.join(args.output_dir, name)}, which this run writes "
                            f"(or moves aside with --overwrite_output_dir); copy it out of --output_dir or choose "
                            "another --output_dir")
    for flag, path in written_paths(args)[1:]:
        real = os.path.realpath(path)
        if real == out and flag == "--log_file":
            raise UserError(f"--log_file {path} is --output_dir itself; name a file (default: log.log)")
        if real != out and inside(real, out):
            name = os.path.relpath(real, out).split(os.sep)[0]
            if run_writes(name, args):
                raise UserError(f"{flag} {path} lies in {os.path.join(args.output_dir, name)}, one of the run's own "
                                f"outputs, which it writes or replaces; choose another {flag} (default: "
                                f"{'log.log' if flag == '--log_file' else 'tensorboard_logdir'})")
    log = written_paths(args)[1][1]
    if os.path.splitext(log)[1].lower() in NOT_A_LOG:
        raise UserError(f"--log_file {log}: a {os.path.splitext(log)[1]} name is not a log file (log lines are "
                        "appended to it); choose another --log_file, e.g. train.log")


def _read_json(path: str):
    """The JSON object in `path`; None if there is no such file, {} if it is unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
        return value if isinstance(value, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return {}


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def _first_missing(path: str):
    """The topmost directory that os.makedirs(path) would create (None if `path` exists)."""
    path, top = os.path.abspath(path), None
    while not os.path.lexists(path):
        top, parent = path, os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return top


def guard_process_exit():
    """For the command line only (it sets process-wide handlers): SIGTERM/SIGINT outside the run's own
    handlers (before it claims its directory, and after it released it, while the interpreter shuts down)
    end the process with one line on stderr; once `finished()` was called, with status 0, for every output is
    written (before: a late SIGTERM gave status 143 and no word, so a scheduler counted a finished run as
    killed). Returns `finished`."""
    done = []

    def late_signal(signum, frame):
        name = signal.Signals(signum).name
        if done:
            print(f"warning: received {name} after the run finished; every output is written", file=sys.stderr,
                  flush=True)
            os._exit(0)
        print(f"error: stopped by {name}", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, late_signal)
    return lambda: done.append(True)


class _Signals:
    """SIGTERM/SIGINT: once the loop is armed (after its first update) the first signal is recorded for
    stop_if_signalled; before that, on a second signal, or while the run is closing, the run stops at once."""

    def __init__(self, owner):
        self.owner, self.received, self.armed, self.closing, self.previous = owner, None, False, False, {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self.handle)

    def handle(self, signum, frame):
        if self.closing or (self.armed and self.received is None):
            self.received = self.received or signum
            return
        again = " (a second signal)" if self.received else ""
        raise Interrupted(f"stopped by {signal.Signals(signum).name}{again} at once; "
                          f"{self.owner.checkpoint_clause()}", 128 + signum)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self.previous = {}


class RunDirectory:
    """What one train.main set up in its output directory, and how it is undone (a context manager around
    the run: `__exit__` closes it with the error, if any)."""

    def __init__(self, args, argv=None):
        self.args = args
        self.argv = list(sys.argv[1:] if argv is None else argv)       # for run.json
        self.signals = _Signals(self)
        self.lock_fd = None
        self.created = None              # the topmost directory this run created
        self.preexisting = set()         # entries of OUT before the run wrote anything
        self.moved = None                # (previous-<time> directory, names moved there)
        self.notes = []                  # (level, message) to log once the log is open
        self.started = time.time()
        self.run_id = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, err, tb):
        try:
            self.close(err)
        except Exception:  # noqa: BLE001 - never hide the run's own error behind a clean-up failure
            logger.debug("clean-up of %s failed", self.args.output_dir, exc_info=True)
        return False

    # ---- claiming
    def claim(self, dist_info, resumed=None, resume_path=None) -> None:
        """Install the signal handlers (every process) and, on the main process, take the directory (see
        the module's docstring). `resumed` is the checkpoint a --resume/--model_ckpt run continues."""
        self.signals.install()
        if dist_info.is_main:
            self.take_directory(resumed, resume_path)

    def take_directory(self, resumed, resume_path) -> None:
        args = self.args
        out = args.output_dir
        refuse_writing_inputs(args)
        created = _first_missing(out)
        try:
            os.makedirs(out, exist_ok=True)
            with tempfile.TemporaryFile(dir=out):      # a unique name: never a user's file
                pass
        except OSError as err:
            raise UserError(f"--output_dir {out}: not writable ({err.strerror}); choose another directory") \
                from None
        self.take_lock()
        self.created = created
        for action in files.clean_stale_scratch(out):     # a killed earlier run's half-written saves
            self.notes.append((logging.WARNING, f"warning: {action}"))
        self.preexisting = set(os.listdir(out)) - {LOCK}
        continuing = ((resumed or {}).get("config") or {}).get("run_id")
        self.run_id, fresh = self.decide_ownership(continuing, resume_path)
        self.preexisting = set(os.listdir(out)) - {LOCK}
        args.run_id = self.run_id            # saved in config.json and in every checkpoint's config
        if fresh:
            program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "train.py"
            write_json_atomic(os.path.join(out, RUN_FILE), {
                "run_id": self.run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": [program, *self.argv],
                "pid": os.getpid(), "host": socket.gethostname(), "continues_checkpoint": resume_path})
        self.notes.append((logging.INFO, f"run {self.run_id} owns {out} (lock {os.path.join(out, LOCK)}, "
                                         f"pid {os.getpid()})"))

    def take_lock(self) -> None:
        out = self.args.output_dir
        path = os.path.join(out, LOCK)
        for _ in range(3):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_json(path) or {}
                os.close(fd)
                raise UserError(f"--output_dir {out} is in use by another run (pid {holder.get('pid', '?')} on "
                                f"{holder.get('host', '?')}, started {holder.get('started', '?')}, holding "
                                f"{path}); wait for it to end or choose another --output_dir") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:                 # its holder removed it while we opened it: take the new one
                os.close(fd)
                continue
            previous = _read_json(path)
            if previous:
                gone = "is no longer running" if previous.get("host") == socket.gethostname() and \
                    not _pid_alive(previous.get("pid")) else "no longer holds it"
                self.notes.append((logging.WARNING, f"warning: took over the stale lock {path} of pid "
                                   f"{previous.get('pid', '?')} on {previous.get('host', '?')} (started "
                                   f"{previous.get('started', '?')}): that process {gone}"))
            payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, payload, 0)
            os.fsync(fd)
            self.lock_fd = fd
            return
        raise UserError(f"--output_dir {out}: could not take {path} (it keeps being replaced); "
                        "is another run starting there? choose another --output_dir")

    def decide_ownership(self, continuing, resume_path):
        """(run id, whether to write run.json); refuses another run's directory."""
        args, out = self.args, self.args.output_dir
        recorded = _read_json(os.path.join(out, RUN_FILE))
        outputs = sorted(name for name in self.preexisting if is_output(name) or name in BOOKKEEPING_NAMES)
        if recorded and continuing and recorded.get("run_id") == continuing:
            self.notes.append((logging.INFO, f"continuing run {continuing} in {out}"))
            return continuing, False
        legacy_resume = continuing is None and recorded is None and resume_path and \
            inside(os.path.realpath(resume_path), os.path.realpath(out))
        if (recorded is None and not outputs) or legacy_resume:
            return continuing or new_run_id(), True
        owner = f"run {recorded.get('run_id', '?')} started {recorded.get('started', '?')}" if recorded \
            else "an earlier run"
        if args.overwrite_output_dir:
            self.move_aside(owner)
            return continuing or new_run_id(), True
        shown = ", ".join(name + ("/" if os.path.isdir(os.path.join(out, name)) else "") for name in outputs[:4])
        shown += f" and {len(outputs) - 4} more" if len(outputs) > 4 else ""
        what = f"{owner}: {shown}" if outputs else f"{owner}: {RUN_FILE}"
        if continuing:
            source = f"--model_ckpt {args.model_ckpt}" if args.model_ckpt else f"--resume's checkpoint {resume_path}"
            raise UserError(f"--output_dir {out} holds the outputs of another run ({what}) than the run {continuing} "
                            f"that {source} continues; continue it in an empty --output_dir, or pass "
                            "--overwrite_output_dir to move the other run's files aside")
        raise UserError(f"--output_dir {out} holds another run's outputs ({what}); pass --overwrite_output_dir to "
                        "move them aside to previous-<time>/, --resume to continue that run, or choose another "
                        "--output_dir")

    def move_aside(self, owner: str) -> None:
        out = self.args.output_dir
        inputs = [real for _, _, real in input_paths(self.args)]
        held = {name for name in self.preexisting
                if any(inside(real, os.path.realpath(os.path.join(out, name))) for real in inputs)}
        names = sorted(name for name in self.preexisting if not name.startswith("previous-") and name not in held)
        target = os.path.join(out, f"previous-{time.strftime('%Y%m%d-%H%M%S')}")
        suffix = 1
        while os.path.lexists(target + (f"-{suffix}" if suffix > 1 else "")):
            suffix += 1
        target += f"-{suffix}" if suffix > 1 else ""
        os.mkdir(target)
        moved = []
        self.moved = (target, moved)
        for name in names:
            os.rename(os.path.join(out, name), os.path.join(target, name))
            moved.append(name)
        kept = f"; kept {', '.join(sorted(held))} (it holds an input)" if held else ""
        self.notes.append((logging.WARNING, f"--overwrite_output_dir: moved the {len(moved)} files and directories "
                                            f"of {owner} to {target}/ (nothing was deleted){kept}"))

    def pending_signal(self, dist_info):
        """After each update: (signal name, exit status) when a SIGTERM/SIGINT came to any process, else None.
        From the first call on, a first signal waits for this check instead of stopping the run at once."""
        self.signals.armed = True
        received = self.signals.received
        if not broadcast_flag(dist_info, received is not None):
            return None
        name = signal.Signals(received).name if received else "a signal to another process"
        return name, 128 + (received or signal.SIGTERM)

    def log_notes(self) -> None:
        for level, message in self.notes:
            logger.log(level, "%s", message)
        self.notes = []

    def checkpoint_clause(self) -> str:
        from training.checkpoint import latest_checkpoint
        last = latest_checkpoint(self.args.output_dir)
        return f"the last checkpoint {last} is intact: continue with --resume" if last else \
            "no checkpoint was written (see --save_per_updates)"

    # ---- closing
    def close(self, err) -> None:
        """Log `err` to the log file, undo a run that wrote no output, release the lock, restore signals."""
        self.signals.closing = True
        try:
            if err is not None and not getattr(err, "logged", False):   # stop_if_signalled logs its own
                line, status = describe(err)
                detail = "".join(traceback.format_exception(type(err), err, err.__traceback__)) if status == 1 \
                    else ""
                _to_log_file(line + ("\n" + detail.rstrip() if detail else ""))
            if self.lock_fd is not None and err is not None and not self.wrote_outputs():
                self.undo()
            elif err is None and self.signals.received:
                logger.warning("received %s while the run was finishing; it completed",
                               signal.Signals(self.signals.received).name)
        finally:
            self.release_lock()
            self.signals.restore()
            for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
                handler.close()
                logger.removeHandler(handler)

    def wrote_outputs(self) -> bool:
        out = self.args.output_dir
        try:
            names = os.listdir(out)
        except OSError:
            return False
        for name in names:
            try:
                if is_output(name) and os.stat(os.path.join(out, name)).st_mtime >= self.started - 0.01:
                    return True
            except OSError:
                continue
        return False

    def undo(self) -> None:
        """A run that wrote no output leaves the directory as it found it (its log stays when the
        directory pre-existed and nothing had to be moved aside)."""
        out = self.args.output_dir
        if self.created:
            shutil.rmtree(self.created, ignore_errors=True)
            return
        log_path = self.args.log_file if os.path.isabs(self.args.log_file) else os.path.join(out, self.args.log_file)
        keep = {os.path.basename(log_path)} if os.path.dirname(os.path.abspath(log_path)) == os.path.abspath(out) \
            and not self.moved else set()
        if self.moved:
            keep.add(os.path.basename(self.moved[0]))
        for name in set(os.listdir(out)) - self.preexisting - keep - {LOCK}:
            path = os.path.join(out, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) and not os.path.islink(path) \
                else os.remove(path)
        if self.moved:
            target, names = self.moved
            for name in names:
                if not os.path.lexists(os.path.join(out, name)):
                    os.rename(os.path.join(target, name), os.path.join(out, name))
            if not os.listdir(target):
                os.rmdir(target)

    def release_lock(self) -> None:
        if self.lock_fd is None:
            return
        try:
            os.remove(os.path.join(self.args.output_dir, LOCK))
        except OSError:
            pass
        os.close(self.lock_fd)          # drops the flock
        self.lock_fd = None


def _to_log_file(text: str) -> None:
    """Write `text` to the run's log file only (stderr already has it)."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "%s", (text,), None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
