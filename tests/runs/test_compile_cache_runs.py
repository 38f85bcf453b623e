"""A compiled run fills XLA's persistent cache unless --no-compile-cache."""

import os

import pytest
import tensorflow as tf

from tests.helpers import TRAIN, run_script

TINY = "--generator classical --batch-size 8 --n-critic 1 --steps 2 --eval-every 2 --eval-samples 50"


@pytest.mark.slow
@pytest.mark.parametrize("flag, writes", [("--compile-cache", True), ("--no-compile-cache", False)])
def test_a_compiled_run_fills_the_cache_unless_told_not_to(tmp_path, flag, writes):
    environment = {key: value for key, value in os.environ.items() if key != "TF_XLA_FLAGS"}
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    flags = [*TINY.split(), flag, "--no-tensorboard", "--results-dir", tmp_path / "runs"]
    process = run_script(TRAIN, *flags, env=environment)
    assert process.returncode == 0, process.stderr[-2000:]
    folder = tmp_path / "cache" / "qgan" / "xla" / f"tf-{tf.__version__}"
    entries = os.listdir(folder) if folder.exists() else []
    if writes:
        assert entries and all(name.startswith("xla_compile_cache") for name in entries)
    else:
        assert entries == []
