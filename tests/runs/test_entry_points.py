"""Every entry point run as a user runs it: console scripts and `python -c` in fresh processes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import console_script

TINY_CONFIG = "layers=1, cutoff=5, batch_size=8, n_critic=1, eval_samples=200, tensorboard=False"


def run(command, timeout=300, **options):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)


@pytest.mark.slow
def test_qgan_train_in_a_fresh_process_wrote_the_sessions_tiny_run(tiny_run):
    # the qgan-train console script trained the shared run (tests/runs/conftest.py) in its own process
    assert "done at step 2" in (tiny_run.parent / "qgan-train.out").read_text()
    assert json.loads((tiny_run / "coverage.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_qgan_sample_in_a_fresh_process_writes_the_samples(tiny_run, tmp_path):
    output = tmp_path / "s.csv"
    process = run([console_script("qgan-sample"), str(tiny_run), "--samples", "100", "--output", str(output)])
    assert process.returncode == 0, process.stderr[-2000:]
    table = np.loadtxt(output, delimiter=",", skiprows=1)
    assert table.shape == (100, 3) and np.all(np.isfinite(table))
    assert output.read_text().splitlines()[0] == "x,y,outcome"


@pytest.mark.slow
def test_load_run_in_a_fresh_process_reproduces_the_runs_final_samples(tiny_run, tmp_path):
    code = (
        "import sys, numpy as np, qgan; g = qgan.load_run(sys.argv[1]); "
        "s, _, o = g.generate(300, chunk_size=250, seed=[0, 2], outcomes=True); "
        "np.save(sys.argv[2], s); print(type(g).__name__, g.outcomes)"
    )
    process = run([sys.executable, "-c", code, str(tiny_run), str(tmp_path / "reloaded.npy")])
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.split()[-2:] == ["QuantumGenerator", "5"]
    np.testing.assert_allclose(
        np.load(tmp_path / "reloaded.npy"), np.load(tiny_run / "samples.npy"), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_qgan_train_as_a_python_call_in_a_fresh_process(tmp_path):
    code = (
        "import sys, qgan; "
        f"config = qgan.TrainConfig(steps=2, eval_every=2, {TINY_CONFIG}, "
        "results_dir=sys.argv[1], run_name='py'); "
        "result = qgan.train(config, log=lambda line: None); "
        "print(result.status, result.coverage.num_modes)"
    )
    process = run([sys.executable, "-c", code, str(tmp_path)])
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.split()[-2:] == ["completed", "8"]
    assert json.loads((tmp_path / "py" / "coverage.json").read_text())["step"] == 2


@pytest.mark.slow
def test_qgan_tune_runs_a_one_trial_study_in_a_fresh_process(tmp_path, far_cluster):
    process = run(
        [console_script("qgan-tune"), *far_cluster, "--steps", "2", "--eval-every", "2"]
        + ["--g-lr", "choice:0.002", "--study", "one", "--output-dir", str(tmp_path)]
    )
    assert process.returncode == 0, process.stderr[-2000:] + process.stdout[-2000:]
    assert "trial 0 done" in process.stdout
    assert (tmp_path / "one" / "summary.md").is_file()


@pytest.mark.parametrize("name", ["qgan-train", "qgan-sample", "qgan-tune"])
def test_every_console_script_prints_its_help(name):
    process = run([console_script(name), "--help"], timeout=120)
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("usage:")


def test_the_public_surface_imports_lazily_in_a_fresh_process():
    loaded = "print('tensorflow' in sys.modules)"
    code = f"import sys, qgan; {loaded}; qgan.load_run; {loaded}"
    process = run([sys.executable, "-c", code], timeout=120)
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ["False", "True"]
