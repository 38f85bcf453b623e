"""XLA's persistent compilation cache: a compiled run writes it, --no-compile-cache does not."""

import os

import pytest
import tensorflow as tf

from qgan import compile_cache

from run_scripts import TRAIN, run_script

TINY = "--generator classical --batch-size 8 --n-critic 1 --steps 2 --eval-every 2 --eval-samples 50"


def test_enable_sets_the_flag_once_and_keeps_a_directory_already_given(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_clustering_debug")
    expected = os.path.join(str(tmp_path), "qgan", "xla", f"tf-{tf.__version__}")
    assert compile_cache.enable() == expected and os.path.isdir(expected)
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_clustering_debug {compile_cache.FLAG}={expected}"
    assert compile_cache.enable(str(tmp_path / "other")) == expected  # TensorFlow reads the flag once
    monkeypatch.setenv("TF_XLA_FLAGS", f"{compile_cache.FLAG}=/somewhere")
    assert compile_cache.enable() == "/somewhere"


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
