"""InputError: what every command refuses with a one-line message and exit status 2."""

from __future__ import annotations


class InputError(ValueError):
    """A flag value, file, folder or storage a command cannot use; the message names it in one line."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name when it has none."""
    text = getattr(error, "message", None) or str(error)
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__
