"""The XLA settings of a run, put in the environment before TensorFlow's first compilation reads them."""

from __future__ import annotations

from qgan.runtime import compile_cache, xla_flags


def prepare_compiler(config) -> None:
    """Points XLA at the compile cache and sets its fusion emitters, as the config asks (no TensorFlow).

    TensorFlow reads these flags once per process, when it first initialises its devices or
    compiles; the command line calls this before it imports TensorFlow, train() again (a no-op then).
    """
    if config.jit_compile and config.compile_cache:
        compile_cache.enable()
    if config.jit_compile:
        xla_flags.set_fusion_emitters(config.xla_fusion_emitters)
