"""qgan-export: the program sf.load reads back gives the generator's own outcome probabilities and means."""

import os
import subprocess

import numpy as np
import pytest
import strawberryfields as sf
import tensorflow as tf

from qgan.models.generator import QuantumGenerator
from qgan.training.saved_generator import save_generator
from tests.engines.test_detectors import with_dark_counts
from tests.helpers import console_script


def saved_generator(folder, **options):
    generator = QuantumGenerator(
        modes=2,
        layers=2,
        cutoff=6,
        seed=5,
        readout="heralded",
        jit_compile=False,
        ancilla_offset=0.8,
        **options,
    )
    rng = np.random.default_rng(6)
    for weight in generator.trainable_weights:  # a generator far from its initial weights
        weight.assign(weight.numpy() + rng.normal(0.0, 0.3, size=weight.shape))
    os.makedirs(folder, exist_ok=True)
    save_generator(generator, str(folder))
    return generator


def export(run_dir, latent, output):
    return subprocess.run(
        [console_script("qgan-export"), str(run_dir), "--latent", latent, "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def sf_heralded(program, cutoff, dark_counts):
    """p_k and conditional ⟨a⟩ of mode 0 given the count on mode 1, from SF's own run of the program."""
    program.circuit = [c for c in program.circuit if not c.op.__class__.__name__.startswith("Measure")]
    state = sf.Engine("fock", backend_options={"cutoff_dim": cutoff}).run(program).state
    rho = state.dm() if not state.is_pure else np.einsum("ab,cd->acbd", state.ket(), state.ket().conj())
    lowering = np.diag(np.sqrt(np.arange(1, cutoff)), 1)
    probabilities = np.array([np.trace(rho[:, :, k, k]).real for k in range(cutoff)])
    lowered = np.array([np.trace(lowering @ rho[:, :, k, k]) for k in range(cutoff)])
    # the program's LossChannel did the detector's efficiency; its MeasureFock names the dark counts
    counted = with_dark_counts(probabilities, dark_counts)
    return counted, with_dark_counts(lowered, dark_counts) / counted


@pytest.mark.slow
@pytest.mark.parametrize(
    "options", [{}, {"detector_efficiency": 0.8, "dark_counts": 0.1, "output_loss": 0.9}]
)
def test_the_exported_program_reproduces_the_generators_outcomes_and_means(tmp_path, options):
    generator = saved_generator(tmp_path / "run", **options)
    latent = "0.3,-0.7"
    process = export(tmp_path / "run", latent, tmp_path / "circuit.xbb")
    assert process.returncode == 0, process.stderr
    program = sf.load(str(tmp_path / "circuit.xbb"))
    kinds = [command.op.__class__.__name__ for command in program.circuit]
    assert kinds[-1] == "MeasureFock" and kinds.count("LossChannel") == (2 if "output_loss" in options else 0)
    dark = program.circuit[-1].op.dark_counts
    probabilities, conditional = sf_heralded(program, 6, dark[0] if dark else 0.0)
    z = tf.constant([[0.3, -0.7, 0.0]])
    coordinates, ours, _ = (value.numpy()[0] for value in generator.mixture(z))
    raw = (coordinates - generator.readout_shift.numpy()) / generator.readout_scale.numpy()
    np.testing.assert_allclose(ours, probabilities, atol=1e-5)
    np.testing.assert_allclose(raw[:, 0], 2 * conditional.real, atol=1e-5)
    np.testing.assert_allclose(raw[:, 1], 2 * conditional.imag, atol=1e-5)
    header = (tmp_path / "circuit.xbb").read_text().splitlines()[:2]
    assert "latent point 0.3, -0.7" in header[0] and "scale =" in header[1]


@pytest.mark.parametrize(
    "latent, message",
    [
        ("0.1", "has 1 numbers; the generator has 2 modes"),
        ("0.1,a", "give 2 comma-separated"),
        ("0.1,3", "[-1, 1]"),
    ],
)
def test_bad_latent_points_are_one_line_errors(tmp_path, latent, message):
    saved_generator(tmp_path / "run")
    process = export(tmp_path / "run", latent, tmp_path / "circuit.xbb")
    assert process.returncode == 2 and message in process.stderr
    assert len(process.stderr.strip().splitlines()) == 1 and not (tmp_path / "circuit.xbb").exists()
