"""XLA and TensorFlow compiler flags in the environment, read and set before the first compilation."""

from __future__ import annotations

import os

FUSION_EMITTERS = "--xla_cpu_use_fusion_emitters"


def flag_value(variable: str, flag: str) -> str | None:
    """The value of `flag` (e.g. "--name") in the environment variable `variable`, or None if unset."""
    for token in os.environ.get(variable, "").split():
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def add_flag(variable: str, flag: str, value: str) -> None:
    """Appends `flag`=`value` to the environment variable `variable`."""
    os.environ[variable] = f"{os.environ.get(variable, '')} {flag}={value}".strip()


def set_fusion_emitters(enabled: bool) -> bool:
    """Asks XLA's CPU compiler for its newer (MLIR) fusion emitters or for its older ones.

    XLA reads XLA_FLAGS once, at the process's first compilation, so this takes effect only when
    called before it. A setting already in XLA_FLAGS is kept, so the user's own flags win.

    Args:
        enabled: True for the newer emitters (XLA's default), False for the older ones.

    Returns:
        The setting in force: True when the newer emitters are used.
    """
    given = flag_value("XLA_FLAGS", FUSION_EMITTERS)
    if given is not None:
        return given.lower() not in ("false", "0")
    if not enabled:
        add_flag("XLA_FLAGS", FUSION_EMITTERS, "false")
    return enabled
