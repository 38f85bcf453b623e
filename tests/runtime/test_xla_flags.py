"""XLA's fusion emitters: the flag sets XLA_FLAGS before the first compilation, the user's setting wins."""

import os

import pytest

from qgan.runtime import xla_flags
from qgan.training.config import TrainConfig
from qgan.training.train import train

OFF = "--xla_cpu_use_fusion_emitters=false"


def test_turning_the_emitters_off_appends_one_flag_to_xla_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    assert xla_flags.set_fusion_emitters(False) is False
    assert os.environ["XLA_FLAGS"] == f"--xla_backend_optimization_level=0 {OFF}"
    assert xla_flags.set_fusion_emitters(False) is False  # found, not appended twice
    assert os.environ["XLA_FLAGS"] == f"--xla_backend_optimization_level=0 {OFF}"
    monkeypatch.delenv("XLA_FLAGS")
    assert xla_flags.set_fusion_emitters(False) is False and os.environ["XLA_FLAGS"] == OFF


def test_turning_them_on_is_xlas_default_and_writes_nothing(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert xla_flags.set_fusion_emitters(True) is True
    assert "XLA_FLAGS" not in os.environ


@pytest.mark.parametrize(
    "given, asked, in_force", [("true", False, True), ("false", True, False), ("0", True, False)]
)
def test_a_setting_already_in_xla_flags_wins(monkeypatch, given, asked, in_force):
    monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_use_fusion_emitters={given}")
    assert xla_flags.set_fusion_emitters(asked) is in_force
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_use_fusion_emitters={given}"


def test_the_default_is_off_and_a_run_saved_before_the_flag_had_them_on():
    assert TrainConfig().xla_fusion_emitters is False
    saved = TrainConfig().to_dict()
    del saved["xla_fusion_emitters"]
    assert TrainConfig().resume_conflicts(saved) == ["xla_fusion_emitters"]
    assert TrainConfig(xla_fusion_emitters=True).resume_conflicts(saved) == []


class BuildStarted(Exception):
    """Raised in place of building the GAN: train() has prepared the compiler by then."""


@pytest.mark.parametrize("compiled, expected", [(True, OFF), (False, "--xla_backend_optimization_level=0")])
def test_train_sets_the_flag_only_for_a_compiled_run(tmp_path, monkeypatch, compiled, expected):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")

    def build_gan(config):
        raise BuildStarted

    # the flag must be in place before the first compilation, so before the GAN exists; the
    # runs that compile with each value train in tests/runs/test_flag_values_under_xla.py
    monkeypatch.setattr("qgan.training.train.build_gan", build_gan)
    config = TrainConfig(results_dir=str(tmp_path), generator="classical", jit_compile=compiled)
    with pytest.raises(BuildStarted):
        train(config, log=lambda line: None)
    assert os.environ["XLA_FLAGS"].split()[-1] == expected.split()[-1]
