"""The pruner library's one file writer: a file replaced whole or not at all (the library imports nothing of the
application, so it keeps this small writer of its own)."""
import os
import tempfile
from typing import Callable


def replace_file(path: str, write: Callable[[str], None]) -> None:
    """`write(tmp)` to a new, uniquely named temporary file beside `path`, then rename it over `path`; on
    failure only that temporary file is removed (never a fixed `path.tmp` that could be somebody's) and
    a previous `path` is left as it was. The file gets the usual umask-honouring mode."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path))
    os.close(fd)
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)          # mkstemp's 0600 would hide the file from the directory's group
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
