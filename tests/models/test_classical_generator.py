"""Tests of qgan.models.classical_generator: the MLP baseline's size, forward pass and training end to end."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from qgan.models.circuit_layout import quantum_parameter_count
from qgan.models.classical_generator import ClassicalGenerator, matching_hidden_units, mlp_parameter_count
from qgan.models.generator import QuantumGenerator
from qgan.training.builders import build_generator
from qgan.training.config import TrainConfig


def test_parameter_count_of_a_dense_network():
    assert mlp_parameter_count(2, (5, 5), 2) == (2 + 1) * 5 + (5 + 1) * 5 + (5 + 1) * 2 == 57
    assert mlp_parameter_count(3, (), 2) == 8


@pytest.mark.parametrize("target, expected", [(60, (5, 5)), (68, (6, 6)), (1, (1, 1)), (200, (11, 11))])
def test_matching_widths_give_the_closest_count(target, expected):
    units = matching_hidden_units(target, 2, 2)
    assert units == expected
    best = min(range(1, 40), key=lambda width: abs(mlp_parameter_count(2, (width, width), 2) - target))
    assert units == (best, best)


def test_classical_generator_is_sized_like_the_circuit_of_the_same_config():
    quantum = build_generator(TrainConfig())
    classical = build_generator(TrainConfig(generator="classical"))
    assert isinstance(classical, ClassicalGenerator)
    assert quantum.parameter_count() == 4 * 14 + 4 * 2 + 4 == 68
    assert classical.hidden_units == (6, 6) and classical.parameter_count() == 74
    plain = build_generator(TrainConfig(generator="classical", reupload=False))
    assert plain.hidden_units == (5, 5) and plain.parameter_count() == 57
    deep_quantum = build_generator(TrainConfig(layers=8, reupload=True))
    deep_classical = build_generator(TrainConfig(generator="classical", layers=8, reupload=True))
    assert deep_quantum.parameter_count() == 8 * 14 + 8 * 2 + 4 == 132
    assert deep_classical.hidden_units == (9, 9) and deep_classical.parameter_count() == 137


@pytest.mark.parametrize("modes", [2, 3, 4])
@pytest.mark.parametrize(
    "layers, reupload, latent_output", [(1, False, False), (3, True, False), (2, True, True)]
)
def test_the_closed_form_count_is_the_circuits_own(modes, layers, reupload, latent_output):
    generator = QuantumGenerator(
        modes=modes,
        layers=layers,
        cutoff=3,
        reupload=reupload,
        latent_output=latent_output,
        jit_compile=False,
    )
    assert quantum_parameter_count(modes, layers, reupload, latent_output=latent_output) == (
        generator.parameter_count()
    )


def test_a_classical_generator_is_built_without_strawberry_fields_in_a_fresh_process():
    # as qgan-train builds it, beside the training module: the circuit's size is counted, not built
    code = (
        "import sys\n"
        "from qgan.training.builders import build_generator\n"
        "from qgan.training.config import TrainConfig\n"
        "import qgan.training.train\n"
        "generator = build_generator(TrainConfig(generator='classical'))\n"
        "print(generator.hidden_units, 'strawberryfields' in sys.modules)\n"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.split("\n")[-2] == "(6, 6) False"


def test_forward_pass_is_the_leaky_relu_network():
    generator = ClassicalGenerator(latent_dim=2, hidden_units=(3,), seed=0)
    z = np.array([[0.5, -1.0], [0.0, 0.25]], np.float32)
    kernel_0, bias_0, kernel_1, bias_1 = (weight.numpy() for weight in generator.weights)
    bias_0 = np.array([0.1, -0.2, 0.3], np.float32)
    generator.biases[0].assign(bias_0)
    hidden = z @ kernel_0 + bias_0
    hidden = np.where(hidden > 0, hidden, 0.2 * hidden)
    expected = hidden @ kernel_1 + bias_1
    coordinates, trace = generator(z, return_trace=True)
    np.testing.assert_allclose(coordinates.numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(trace.numpy(), [1.0, 1.0])
    samples, traces = generator.generate(7, chunk_size=3, seed=1)
    assert samples.shape == (7, 2) and np.all(traces == 1.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(generator(z))
    assert all(gradient is not None for gradient in tape.gradient(loss, generator.trainable_weights))


def test_classical_mixture_is_softmax_logits_and_an_mlp_of_latent_and_outcome_code():
    from qgan.models.classical_generator import ClassicalMixtureGenerator

    generator = ClassicalMixtureGenerator(latent_dim=2, outcomes=3, hidden_units=(4,), seed=0)
    generator.logits.assign([1.0, 0.0, -1.0])
    z = np.array([[0.5, -1.0, 0.9], [0.0, 0.25, -0.9]], np.float32)
    coordinates, probabilities, trace = (value.numpy() for value in generator.mixture(z))
    softmax = np.exp([1.0, 0.0, -1.0]) / np.sum(np.exp([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(probabilities, np.stack([softmax, softmax]), rtol=1e-6)
    np.testing.assert_array_equal(trace, [1.0, 1.0])
    for outcome in range(3):
        inputs = np.concatenate([z[:, :2], np.tile(np.eye(3)[outcome], (2, 1))], axis=1).astype(np.float32)
        np.testing.assert_allclose(coordinates[:, outcome], generator.network(inputs).numpy(), atol=1e-6)
    samples, traces = generator(z, return_trace=True)
    # u = 0.95 falls in the last outcome (cumulative 0.665, 0.910), u = 0.05 in the first
    np.testing.assert_allclose(samples.numpy(), [coordinates[0, 2], coordinates[1, 0]], atol=1e-6)


def test_classical_mixture_is_sized_like_the_heralded_circuit():
    config = TrainConfig(readout="heralded", cutoff=12)
    quantum = build_generator(config)
    mixture = build_generator(dataclasses.replace(config, generator="classical-mixture"))
    assert quantum.outcomes == mixture.outcomes == 12
    assert quantum.parameter_count() == 68 and quantum.latent_dim == mixture.latent_dim == 3
    # 12 logits + an MLP (2 + 12) → 3 → 3 → 2: 12 + 45 + 12 + 8 = 77, the closest to 68 of equal widths
    assert mixture.hidden_units == (3, 3) and mixture.parameter_count() == 77
