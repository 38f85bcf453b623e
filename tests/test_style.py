"""The code is ruff clean and the README documents every flag."""

import dataclasses
import os
import subprocess
import sys

from qgan.training.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ruff_is_clean():
    process = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "qgan", "scripts", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stdout + process.stderr


def test_readme_documents_every_flag():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    missing = [
        "--" + field.name.replace("_", "-")
        for field in dataclasses.fields(TrainConfig)
        if f"`--{field.name.replace('_', '-')}" not in readme
    ]
    assert not missing, missing


def test_readme_documents_every_tune_flag():
    from qgan.tune.cli import build_tune_parser

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    flags = [flag for action in build_tune_parser()._actions for flag in action.option_strings]
    missing = [
        flag for flag in flags if flag.startswith("--") and f"`{flag}`" not in readme and flag != "--help"
    ]
    assert not missing, missing
