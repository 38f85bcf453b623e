"""Both values of --xla-fusion-emitters train the circuit under XLA."""

import json

import pytest

from tests.helpers import TRAIN, run_script

TINY_CIRCUIT = "--cutoff 4 --layers 1 --batch-size 8 --n-critic 1 --steps 2 --eval-every 2 --eval-samples 50"


@pytest.mark.slow
@pytest.mark.parametrize(
    "flag, value", [("--xla-fusion-emitters", True), ("--no-xla-fusion-emitters", False)]
)
def test_both_values_train_the_circuit_under_xla(tmp_path, flag, value):
    flags = [
        *TINY_CIRCUIT.split(),
        flag,
        "--no-tensorboard",
        "--results-dir",
        tmp_path,
        "--run-name",
        "emitters",
    ]
    process = run_script(TRAIN, *flags)
    assert process.returncode == 0, process.stderr[-2000:]
    assert "done at step 2" in process.stdout
    with open(tmp_path / "emitters" / "config.json") as file:
        saved = json.load(file)
    assert saved["xla_fusion_emitters"] is value and saved["jit_compile"] is True
