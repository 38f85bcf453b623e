"""The code is ruff clean and formatted, and docs/flags.md documents every flag of every command."""

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


def test_ruff_format_is_clean():
    process = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "qgan", "scripts", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stdout + process.stderr


def flags_reference():
    with open(os.path.join(ROOT, "docs", "flags.md"), encoding="utf-8") as handle:
        return handle.read()


def test_the_reference_documents_every_training_flag():
    readme = flags_reference()
    missing = [
        "--" + field.name.replace("_", "-")
        for field in dataclasses.fields(TrainConfig)
        if f"`--{field.name.replace('_', '-')}" not in readme
    ]
    assert not missing, missing


def option_flags(parser):
    return [flag for action in parser._actions for flag in action.option_strings]


def test_the_reference_documents_every_flag_of_tune_and_sample():
    from qgan.training.sample_cli import build_parser as build_sample_parser
    from qgan.tune.cli import build_tune_parser

    readme = flags_reference()
    flags = option_flags(build_tune_parser()) + option_flags(build_sample_parser())
    missing = [
        flag for flag in flags if flag.startswith("--") and f"`{flag}`" not in readme and flag != "--help"
    ]
    assert not missing, missing
