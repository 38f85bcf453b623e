"""XLA compiler options a run sets in XLA_FLAGS before the process's first XLA compilation."""

from __future__ import annotations

import os

FUSION_EMITTERS = "--xla_cpu_use_fusion_emitters"


def set_fusion_emitters(enabled: bool) -> bool:
    """Asks XLA's CPU compiler for its newer (MLIR) fusion emitters or for its older ones.

    XLA reads XLA_FLAGS once, at the process's first compilation, so this takes effect only when
    called before it. A setting already in XLA_FLAGS is kept, so the user's own flags win.

    Args:
        enabled: True for the newer emitters (XLA's default), False for the older ones.

    Returns:
        The setting in force: True when the newer emitters are used.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    for token in flags.split():
        if token.startswith(FUSION_EMITTERS + "="):
            return token.split("=", 1)[1].lower() not in ("false", "0")
    if not enabled:
        os.environ["XLA_FLAGS"] = f"{flags} {FUSION_EMITTERS}=false".strip()
    return enabled
