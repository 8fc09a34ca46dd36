"""Reading JSON the toolkit did not necessarily write well: damaged or hostile files end as one UserError.

`json.load` raises more than `ValueError` on bad input: a document nested thousands of levels deep
(`[[[[...`) raises `RecursionError`, bytes that are not UTF-8 `UnicodeDecodeError` (a `ValueError`),
an unreadable file `OSError`. `read_json` (a whole file) and `parse_json_line` (one line of a
JSON-lines file) turn all of them into a `UserError` naming the file, with `:line` for a line, what
the file should have been and what to do.
"""
import json

from data_utils.errors import UserError


def _problem(err: BaseException) -> str:
    """A short description of why JSON could not be read, for the one-line message."""
    if isinstance(err, RecursionError):
        return "RecursionError: nested too deeply"
    if isinstance(err, OSError):
        return f"{type(err).__name__}: {err.strerror or err}"
    return f"{type(err).__name__}: {' '.join(str(err).split())[:80]}"


def json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages: 'an object', 'an array', 'a string', ..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "null"


def parse_json_line(raw, path: str, line_no: int, what: str, fix: str):
    """The JSON value of one line `raw` (str or bytes) of the JSON-lines file `path`; a line that is not
    valid JSON is `UserError("path:line: not <what> (<why>); <fix>")`."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise UserError(f"{path}:{line_no}: not {what} ({_problem(err)}); {fix}") from None


def read_json(path: str, what: str, fix: str):
    """The JSON value of the file `path`; a file that cannot be read or is not valid JSON is
    `UserError("path: not <what> (<why>); <fix>")`."""
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except (OSError, ValueError, RecursionError) as err:
        raise UserError(f"{path}: not {what} ({_problem(err)}); {fix}") from None
