"""The toolkit's atomic writers and its "inputs are never written to" check.

    write_atomic / write_output_file   one file: either its old self or complete, never half-written
    write_json_atomic                  the same for a JSON document
    write_directory                    one directory (a model, a checkpoint, an export): built in a fresh
                                       temporary sibling that nobody else can own, then renamed into place
    refuse_writing_inputs              a command's written paths against the paths it reads
    refuse_unwritable                  an output that could not be written, refused before any work
    claim_output_dir                   an existing --output_dir of a command: refused unless it is empty or
                                       the user asked for overwriting (its contents are then moved aside)

Nothing here deletes a path it did not create: temporary names are unique (never a fixed `<dir>.tmp` that
could be a user's directory), and a replaced directory is removed only when the caller says it made it.
"""
import contextlib
import errno
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid

from data_utils.errors import UserError


def why_not_a_file(path: str) -> str:
    """Why `path`, which os.path.isfile refuses, cannot be read as a file: for a one-line error."""
    if os.path.isdir(path):
        return "is a directory, not a file"
    if os.path.lexists(path):
        return "is not a regular file (a FIFO, device or broken link)"
    return "file not found"


def write_atomic(path: str, write, *, binary: bool = False):
    """Call `write(handle)` on a new temporary file beside `path`, then rename it over `path`;
    returns what `write` returns. On any failure the temporary file is removed, a previous `path`
    is left as it was, and the error propagates. The file gets the usual umask-honouring mode."""
    directory, name = os.path.split(path)
    if not name:
        raise UserError(f"cannot write a file named {path!r}: the output's file name is empty; name a file")
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as handle:
            result = write(handle)
        os.replace(tmp, path)
        return result
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_output_file(path: str, write, *, binary: bool = False):
    """`write_atomic` for a run's outputs: a failure to write (a full disk, a read-only folder) is a
    one-line UserError naming the file."""
    try:
        return write_atomic(path, write, binary=binary)
    except OSError as err:
        raise UserError(f"{path}: could not write it ({err.strerror or err}); the previous file, if any, is "
                        "intact; free space or choose another --output_dir") from None


def write_json_atomic(path: str, payload) -> None:
    write_output_file(path, lambda handle: json.dump(payload, handle))


def io_failure_reason(err: BaseException):
    """The reason to print when `err` is a failure to write (a full disk, a read-only folder), else None.
    safetensors reports such failures as SafetensorError and the tokenizers library as a plain Exception."""
    if isinstance(err, OSError):
        return err.strerror or " ".join(str(err).split()) or type(err).__name__
    if type(err) is Exception or type(err).__name__ == "SafetensorError":
        return " ".join(str(err).split())[:200] or type(err).__name__
    return None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _unique_sibling(directory: str, kind: str) -> str:
    parent, base = os.path.split(directory)
    while True:
        path = os.path.join(parent, f".{base}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}")
        if not os.path.lexists(path):
            return path


# The names write_directory gives its temporary and set-aside siblings: .<name>.<pid>.<random>.tmp|old
_SCRATCH = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.(tmp|old)$")


def clean_stale_scratch(directory: str) -> list:
    """Tidy what write_directory and write_atomic left in `directory` in a process that no longer runs (killed
    mid-save): a temporary copy (directory or file) is removed; a set-aside original whose new version never
    arrived is put back.
    Only its own naming pattern with a dead pid is matched, so a user's file never is. Returns one
    sentence per action, for the log."""
    done = []
    try:
        names = os.listdir(directory)
    except OSError:
        return done
    for name in sorted(names):
        match = _SCRATCH.match(name)
        path = os.path.join(directory, name)
        if match is None or os.path.islink(path) or not os.path.exists(path):
            continue
        try:
            os.kill(int(match["pid"]), 0)
            continue                                  # its writer still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError, ValueError):
            continue
        original = os.path.join(directory, match["name"])
        if not os.path.isdir(path):                   # a single file's scratch (write_atomic): never the original
            if name.endswith(".tmp") and os.path.isfile(path):
                os.unlink(path)
                done.append(f"removed {path}, left half-written by a process that no longer runs")
            continue
        kept = sorted(n for n in os.listdir(path) if n.startswith("previous-")) if name.endswith(".tmp") else []
        if name.endswith(".old") and not os.path.lexists(original):
            os.rename(path, original)
            done.append(f"put back {original}, set aside by a save that was killed before it finished")
        elif kept and not os.path.lexists(original):
            # a move_aside swap killed between its two renames: the original sits in the scratch's previous-*
            os.rename(os.path.join(path, kept[-1]), original)
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"put back {original}, moved aside by a save that was killed before it finished")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path}, left half-written by a process that no longer runs")
    return done


def previous_name(directory: str) -> str:
    """A free `previous-<time>[-k]` name inside `directory`, where replaced contents are kept."""
    stem = f"previous-{time.strftime('%Y%m%d-%H%M%S')}"
    name, k = stem, 1
    while os.path.lexists(os.path.join(directory, name)):
        k += 1
        name = f"{stem}-{k}"
    return name


def write_directory(directory: str, fill, *, existing: str = "replace", what: str = "the model",
                    flag: str = "--output_dir", failure_hint=None):
    """Write `directory` whole or not at all; returns what `fill(tmp)` returns.

    `fill(tmp)` writes the content into a new, uniquely named temporary sibling; the sibling is then renamed
    to `directory`. What was at `directory` before:
        "replace"     the caller made it (this run's model/, checkpoint-N/): it is removed once the new one is
                      in place;
        "move_aside"  somebody else's: kept whole as `directory/previous-<time>/` inside the new directory.
    On any failure only the temporary directory is removed and `directory` stays as it was; a failure to
    write (full disk, read-only folder) becomes a one-line UserError naming `directory` (`failure_hint(
    reason)` gives its text when set)."""
    if existing not in ("replace", "move_aside"):
        raise ValueError(f"existing={existing!r}: use 'replace' or 'move_aside'")
    if not directory:       # abspath('') is the working directory, which would be replaced
        raise UserError(f"{flag} is empty; give a directory")
    directory = os.path.abspath(directory)
    here = os.path.realpath(os.getcwd())
    if placement(directory, here) in ("same", "contains"):
        raise UserError(f"{flag} {directory} is the working directory or holds it; it would be replaced whole: "
                        f"choose another {flag}")
    if os.path.lexists(directory) and (os.path.islink(directory) or not os.path.isdir(directory)):
        raise UserError(f"{flag} {directory}: a file or link is in the way; remove it or choose another {flag}")
    for action in clean_stale_scratch(os.path.dirname(directory)):     # a killed earlier save's leftovers
        print(f"warning: {action}", file=sys.stderr)
    tmp = None
    try:
        try:
            os.makedirs(os.path.dirname(directory), exist_ok=True)
        except FileExistsError:        # a file stands where a parent directory must be
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)) from None
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.{os.getpid()}.", suffix=".tmp",
                               dir=os.path.dirname(directory))
        os.chmod(tmp, 0o777 & ~_umask())          # mkdtemp's 0700 would hide a shared model from its group
        result = fill(tmp)
        _swap_in(tmp, directory, existing)
        return result
    except BaseException as err:
        if tmp is not None and os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        reason = io_failure_reason(err)
        if reason is None:
            raise
        if failure_hint is not None:
            raise UserError(failure_hint(reason)) from None
        state = "its previous content is intact" if os.path.isdir(directory) else "nothing was written"
        raise UserError(f"could not write {what} to {directory} ({reason}); {state}; free space or choose "
                        f"another {flag}") from None


def _swap_in(tmp: str, directory: str, existing: str) -> None:
    if not os.path.lexists(directory):
        os.rename(tmp, directory)
        return
    if existing == "move_aside":
        os.rename(directory, os.path.join(tmp, previous_name(tmp)))
        try:
            os.rename(tmp, directory)
        except OSError:
            os.rename(os.path.join(tmp, [n for n in os.listdir(tmp) if n.startswith("previous-")][0]), directory)
            raise
        return
    aside = _unique_sibling(directory, "old")
    os.rename(directory, aside)
    try:
        os.rename(tmp, directory)
    except OSError:
        os.rename(aside, directory)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def remove_directory(directory: str) -> None:
    """Delete `directory` so that a kill midway never leaves it half-deleted under its own name: it is first
    renamed to a scratch sibling (`.<name>.<pid>.<random>.tmp`), which the next clean_stale_scratch removes."""
    doomed = _unique_sibling(directory, "tmp")
    os.rename(directory, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def refuse_writing_inputs(writes, reads) -> None:
    """Nothing a command names as an input is ever written to: each written path (flag, path) must not be
    an input path (flag, path), lie inside an input directory, or (for `dir:` flags, written whole) contain
    an input. Paths that do not exist as inputs (a hub model id) are skipped."""
    for out_flag, out_path in writes:
        if not out_path:
            continue
        whole = out_flag.startswith("dir:")
        out_flag = out_flag.removeprefix("dir:")
        for in_flag, in_path in reads:
            if not in_path or not os.path.exists(in_path):
                continue
            relation = placement(out_path, in_path)
            if relation == "same" or (relation == "inside" and os.path.isdir(in_path)) or \
                    (relation == "contains" and whole):
                where = {"same": f"is the input {in_flag} {in_path} itself",
                         "inside": f"is inside the input {in_flag} {in_path}",
                         "contains": f"contains the input {in_flag} {in_path}"}[relation]
                raise UserError(f"{out_flag} {out_path} {where}; nothing named as an input is ever written to: "
                                f"choose another {out_flag}")


def refuse_unwritable(path: str, flag: str, *, directory: bool = False, inside: bool = False) -> None:
    """Refuse, before any work, an output that could not be written at the end: `path` (a directory when
    `directory`, else a file written atomically beside itself) must not find the other kind in its place, and
    a file must be creatable in the directory that holds it, or in the nearest existing folder above it when
    it does not exist yet (tried with a temporary file, which also finds read-only file systems that
    permission bits do not show). Nothing is left behind. `inside`: `path` is one of the files a command
    writes into its `flag` directory (named so in the message)."""
    shown = f"{path} (in {flag})" if inside else f"{flag} {path}"
    if os.path.lexists(path) and os.path.isdir(path) != directory:
        raise UserError(f"{shown} is {'a file' if directory else 'a directory'}, where "
                        f"{'a directory' if directory else 'a file'} is to be written; move it aside or choose "
                        f"another {flag}")
    folder = path if directory and os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UserError(f"{shown}: cannot be created because {folder} is a file; choose another {flag}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{shown}: cannot write in {folder} ({err.strerror or err}); choose another {flag}") \
            from None


def claim_output_dir(directory: str, overwrite: bool, flag: str = "--output_dir",
                     overwrite_flag: str = "--overwrite_output_dir") -> str:
    """How `write_directory` may treat an existing `directory` a command is about to write: "replace" when it
    is absent or empty, "move_aside" when it holds something and `overwrite` is set; otherwise refused
    (checked before any work is done)."""
    if not directory:
        raise UserError(f"{flag} is empty; give a directory")
    if os.path.islink(directory):
        raise UserError(f"{flag} {directory} is a symbolic link; give the directory itself")
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise UserError(f"{flag} {directory} is a file; give a directory")
    try:
        names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    except OSError as err:
        raise UserError(f"{flag} {directory}: cannot read it ({err.strerror}); choose another {flag}") from None
    if not names:
        return "replace"
    if overwrite:
        return "move_aside"
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    raise UserError(f"{flag} {directory} exists and holds {shown}; pass {overwrite_flag} to keep them in "
                    f"{directory}/previous-<time>/ beside the new output, or choose another {flag}")


def placement(path: str, other: str):
    """Where directory `path` lies relative to directory `other`, by their real paths: "same",
    "inside" (below it), "contains" (above it), or None (apart). For refusing outputs that would
    write into an input."""
    path, other = os.path.realpath(path), os.path.realpath(other)
    if path == other:
        return "same"
    if path.startswith(other.rstrip(os.sep) + os.sep):
        return "inside"
    if other.startswith(path.rstrip(os.sep) + os.sep):
        return "contains"
    return None

