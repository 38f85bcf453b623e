"""scripts/expressivity.py end to end: each model fitted, its report written."""

import json
import os

import numpy as np
import pytest

from qgan.models.expressivity import main


@pytest.mark.slow
def test_script_fits_each_model_and_writes_its_report(tmp_path):
    lines = []
    argv = ["--layers", "1", "--reupload", "yes", "--cutoff", "4", "--classical-widths", "3", "--steps", "20"]
    status = main([*argv, "--output-dir", str(tmp_path)], log=lines.append)
    assert status == 0
    (report,) = os.listdir(tmp_path)
    fits = json.loads((tmp_path / report).read_text())["fits"]
    assert [fit["generator"] for fit in fits] == ["quantum, 1 layers, re-uploading", "classical MLP 2-3-3-2"]
    assert [fit["parameters"] for fit in fits] == [14 + 2 + 4, 9 + 12 + 8]
    assert 0.0 < fits[0]["trace_min"] <= fits[0]["trace_mean"] <= 1.0 + 1e-6
    table = lines[-1].splitlines()
    assert table[1].startswith("| generator | parameters | modes | HQ % |")
    assert table[3].startswith("| quantum, 1 layers, re-uploading | 20 | ")
    assert table[4].startswith("| classical MLP 2-3-3-2 | 29 | ")


@pytest.mark.slow
def test_script_fits_a_heralded_circuit(tmp_path):
    lines = []
    argv = ["--readout", "heralded", "--layers", "1", "--reupload", "yes", "--cutoff", "5"]
    argv += ["--classical-widths", "none", "--steps", "20", "--latent-scale", "0.1", "--ancilla-offset", "1"]
    status = main([*argv, "--output-dir", str(tmp_path)], log=lines.append)
    assert status == 0
    (report,) = os.listdir(tmp_path)
    (fit,) = json.loads((tmp_path / report).read_text())["fits"]
    assert fit["generator"] == "quantum, 1 layers, re-uploading, heralded (5 outcomes)"
    assert fit["parameters"] == 14 + 2 + 4
    assert 0.9 < fit["trace_min"] <= fit["trace_mean"] <= 1.0 + 1e-6
    assert np.isfinite(fit["loss"])
