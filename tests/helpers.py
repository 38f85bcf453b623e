"""Helpers of the tests: the project's scripts run as a user runs them, in a fresh Python process."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = "train_coordinate_quantum_gan.py"


def script_command(name, *arguments):
    """The command line that runs scripts/`name` with `arguments` under this test's Python."""
    return [sys.executable, os.path.join(ROOT, "scripts", name), *map(str, arguments)]


def run_script(name, *arguments, timeout=600, **options):
    """Runs scripts/`name` to its end; returns the CompletedProcess with its text output captured."""
    return subprocess.run(
        script_command(name, *arguments), capture_output=True, text=True, timeout=timeout, **options
    )


def start_script(name, *arguments, **options):
    """Starts scripts/`name`; returns its Popen, the output piped as text unless `options` say otherwise."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **options}
    return subprocess.Popen(script_command(name, *arguments), **options)


def console_script(name):
    """The path of an installed console script (qgan-train, …) beside this test's Python."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is not installed; install the project with pip install -e .")
    return path


# the session's shared tiny run (tests/runs/conftest.py `tiny_run`): the heralded circuit compiled
# under XLA, with a checkpoint at each of its 2 steps; add --steps
TINY_RUN = [
    "--layers", "1", "--cutoff", "5", "--batch-size", "8", "--n-critic", "1", "--eval-every", "2",
    "--checkpoint-every", "1", "--eval-samples", "300", "--no-tensorboard",
]  # fmt: skip
