"""XLA's persistent compilation cache: a compiled run writes it, --no-compile-cache does not."""

import os

import tensorflow as tf

from qgan.runtime import compile_cache


def test_enable_sets_the_flag_once_and_keeps_a_directory_already_given(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_clustering_debug")
    expected = os.path.join(str(tmp_path), "qgan", "xla", f"tf-{tf.__version__}")
    assert compile_cache.enable() == expected and os.path.isdir(expected)
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_clustering_debug {compile_cache.FLAG}={expected}"
    assert compile_cache.enable(str(tmp_path / "other")) == expected  # TensorFlow reads the flag once
    monkeypatch.setenv("TF_XLA_FLAGS", f"{compile_cache.FLAG}=/somewhere")
    assert compile_cache.enable() == "/somewhere"
