"""The import rules of ARCHITECTURE.md: light modules stay light, the guard knows no GAN."""

import subprocess
import sys


def loaded_modules(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(output.stdout.split())


def test_coverage_targets_plots_import_neither_tensorflow_nor_strawberry_fields():
    modules = loaded_modules("import qgan.coverage, qgan.targets, qgan.plots, qgan.config")
    assert "tensorflow" not in modules
    assert "strawberryfields" not in modules


def test_guard_imports_nothing_gan_or_circuit_specific():
    modules = loaded_modules("import qgan.guard")
    assert not {"qgan.gan", "qgan.generator", "qgan.circuits", "qgan.critic", "strawberryfields"} & modules


def test_tune_knows_training_only_through_the_command_line():
    modules = loaded_modules("import qgan.tune.cli")
    assert not {"tensorflow", "keras", "strawberryfields", "qgan.train", "qgan.gan"} & modules
