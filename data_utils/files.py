"""The toolkit's one atomic file writer: a file is either its old self or complete, never half-written."""
import contextlib
import os
import uuid

from data_utils.errors import UserError


def write_atomic(path: str, write, *, binary: bool = False):
    """Call `write(handle)` on a new temporary file beside `path`, then rename it over `path`;
    returns what `write` returns. On any failure the temporary file is removed, a previous `path`
    is left as it was, and the error propagates. The file gets the usual umask-honouring mode."""
    directory, name = os.path.split(path)
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

