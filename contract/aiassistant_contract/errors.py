"""The errors both processes raise and the one way a pydantic ValidationError becomes words.

Every message is safe to show in status, Events and logs: it names the field or the env var, never
a key's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import ValidationError


class SpecError(ValueError):
    """An AIAssistant spec the operator will not run; the message names the field and is safe for
    status, Events and logs (it never holds a key)."""


class MissingKeyError(ValueError):
    """A key env var is unset; the message names the variable, never a value."""


def require_env(environ: Mapping[str, str], name: str, why: str) -> str:
    """The value of the key env var `name`; MissingKeyError "<name> is not set: <why>" if empty."""
    value = environ.get(name, "")
    if not value:
        raise MissingKeyError(f"{name} is not set: {why}")
    return value


def field_path(loc: Sequence[int | str], root: str = "") -> str:
    """A pydantic error location as written in the input: `tools[0].timeoutSeconds` (camelCase
    keys), under `root` if given (`spec.tools[0].timeoutSeconds`)."""
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def error_lines(err: ValidationError, root: str = "") -> list[str]:
    """One `<field>: <message>` line per error, the field as `field_path` spells it. A key the model
    does not know is an "unknown field"; pydantic's "Value error, " prefix is dropped. An error of
    the whole object (no location) is its message alone: a model check names its field itself."""
    lines = []
    for error in err.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        path = field_path(error["loc"], root)
        lines.append(f"{path}: {message}" if path else message)
    return lines


def describe(err: ValidationError, root: str = "") -> str:
    """`error_lines` on one line, separated by "; " (for status, Events and settings errors)."""
    return "; ".join(error_lines(err, root))
