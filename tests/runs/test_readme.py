"""The README's commands and code run as shown, each in a fresh process (the short ones, or shortened)."""

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, TRAIN, console_script

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
    README = handle.read()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.DOTALL)
SHELL_LINES = [line for kind, block in BLOCKS if kind == "bash" for line in block.splitlines()]
PYTHON_BLOCKS = [block for kind, block in BLOCKS if kind == "python"]
SHORT_TRAINING = ["--steps", "4", "--eval-every", "2", "--checkpoint-every", "2", "--eval-samples", "200"]


def commands(program):
    """The README's shell commands that start with `program`, as argument lists."""
    return [shlex.split(line)[1:] for line in SHELL_LINES if line.startswith(program + " ")]


def run_python(code, cwd=ROOT):
    """The README's Python `code` run in a fresh interpreter that imports this checkout's qgan."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def python_block(first_line):
    (block,) = [block for block in PYTHON_BLOCKS if block.splitlines()[-1] and first_line in block]
    return block


def test_the_readme_has_the_commands_this_module_runs():
    assert len(commands("qgan-tune")) >= 3 and len(commands("qgan-train")) >= 1
    assert any(TRAIN in line for line in SHELL_LINES)
    assert len(PYTHON_BLOCKS) >= 3
    assert README.count("\n") <= 350


@pytest.mark.parametrize("program", ["qgan-train", "qgan-sample", "qgan-export", "qgan-tune"])
def test_every_console_script_prints_its_help(program):
    done = subprocess.run([console_script(program), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: {program}")


@pytest.mark.parametrize("arguments", commands("qgan-tune"), ids=lambda arguments: " ".join(arguments)[:60])
def test_each_tune_command_of_the_readme_is_a_valid_study(tmp_path, arguments):
    done = subprocess.run(
        [console_script("qgan-tune"), *arguments, "--output-dir", str(tmp_path), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "qgan-tune: study " in done.stdout
    assert os.listdir(tmp_path) == []  # a dry run writes nothing


@pytest.mark.slow
def test_the_own_data_command_trains_for_four_steps(tmp_path):
    # set-up command 1 is the script with no flags: tests/runs/test_command_line.py runs it
    (setup,) = [line for line in SHELL_LINES if TRAIN in line]
    assert setup.endswith(f"scripts/{TRAIN}")
    # two clusters, the points under a header row as a spreadsheet writes them
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, -1.0], [-1.0, 0.0]])
    points = centres[rng.integers(0, 2, 300)] + rng.normal(0, 0.05, (300, 2))
    np.savetxt(tmp_path / "points.csv", points, delimiter=",", header="x,y", comments="")
    np.savetxt(tmp_path / "centres.csv", centres, delimiter=",")
    (own_data,) = [arguments for arguments in commands("qgan-train") if "file" in arguments]
    done = subprocess.run(
        [
            console_script("qgan-train"),
            *own_data,
            *SHORT_TRAINING,
            "--results-dir",
            "runs",
            "--run-name",
            "own",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "done at step 4 in" in done.stdout and "/2 modes captured" in done.stdout
    final = json.loads((tmp_path / "runs" / "own" / "coverage.json").read_text())
    assert final["coverage"]["num_modes"] == 2 and final["coverage"]["num_samples"] == 200


@pytest.mark.slow
def test_the_reuse_export_and_strawberry_fields_examples_run(tmp_path):
    done = run_python(python_block("qgan.load_run(") + "\nprint(samples.shape, outcomes.max())")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:2] == ["(1000,", "2)"]
    (export,) = re.findall(r"`(qgan-export RUN [^`]+)`", README)
    arguments = shlex.split(export)[1:]
    arguments[0] = os.path.join(ROOT, "results", "ring-default-seed0")
    done = subprocess.run(
        [console_script("qgan-export"), *arguments], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    done = run_python(python_block("sf.load("), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.fullmatch(r"\[\[\d+\]\]", done.stdout.strip())


@pytest.mark.slow
def test_the_guard_example_skips_the_broken_batch_in_every_epoch():
    done = run_python(python_block("GuardedModel("))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "3 of 24 steps skipped"
