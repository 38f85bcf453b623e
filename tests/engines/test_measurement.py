"""Heralded measurement of ancilla modes: closed forms, both engines, and fock/sf agreement with gradients."""

import math

import numpy as np
import pytest
import strawberryfields as sf
import tensorflow as tf
from strawberryfields import ops

from qgan.engines import FockEngine, StrawberryFieldsEngine, fock_beamsplitter, fock_gates
from qgan.engines.detectors import Detector, detector_matrix
from qgan.engines.measurement import heralded_moments, outcome_count
from qgan.models.circuits import build_circuit

ENGINES = {"fock": lambda cutoff: FockEngine(cutoff, dtype=tf.complex128), "sf": StrawberryFieldsEngine}


def program_of(modes, build):
    program = sf.Program(modes)
    with program.context as q:
        build(q)
    return program


def coherent(alpha, cutoff):
    n = np.arange(cutoff)
    return np.exp(-(abs(alpha) ** 2) / 2) * alpha**n / np.sqrt([math.factorial(k) for k in n])


def test_ideal_pnr_and_threshold_detector_matrices():
    np.testing.assert_array_equal(detector_matrix(3, 1, Detector("pnr")), np.eye(3))
    # two threshold ancillas at cutoff 2: patterns 00, 01, 10, 11 → outcomes 0, 1, 2, 3
    np.testing.assert_array_equal(detector_matrix(2, 2, Detector("threshold")), np.eye(4))
    groups = detector_matrix(3, 2, Detector("threshold"))  # patterns (0,0) (0,1) (0,2) (1,0) … (2,2)
    np.testing.assert_array_equal(groups.argmax(axis=1), [0, 1, 1, 2, 3, 3, 2, 3, 3])
    assert outcome_count(12, 1, "pnr") == 12 and outcome_count(12, 3, "threshold") == 8
    assert set(np.unique(groups)) == {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown detector 'apd'; allowed: pnr, threshold"):
        outcome_count(5, 1, "apd")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_product_state_conditional_means_equal_the_unconditional_ones(engine):
    cutoff, alpha, beta = 12, 0.6 * np.exp(0.9j), 1.1
    program = program_of(
        2, lambda q: (ops.Dgate(abs(alpha), np.angle(alpha)) | q[0], ops.Dgate(beta, 0.0) | q[1])
    )
    output = ENGINES[engine](cutoff).heralded(program, {}, 1, output_modes=(0,), ancilla_modes=(1,))
    amplitudes = coherent(alpha, cutoff)
    lowered = np.sum(amplitudes[:-1].conj() * amplitudes[1:] * np.sqrt(np.arange(1, cutoff)))
    unconditional = lowered / np.sum(np.abs(amplitudes) ** 2)  # ⟨a⟩ of the truncated mode-0 state
    ancilla = np.abs(coherent(beta, cutoff)) ** 2
    probabilities = output.probabilities.numpy()[0]
    np.testing.assert_allclose(probabilities, ancilla * np.sum(np.abs(amplitudes) ** 2), atol=1e-6)
    np.testing.assert_allclose(output.x_means.numpy()[0, :, 0], 2 * unconditional.real, atol=1e-5)
    np.testing.assert_allclose(output.p_means.numpy()[0, :, 0], 2 * unconditional.imag, atol=1e-5)
    # and the untruncated closed form, ⟨x⟩ = 2 Re α, ⟨p⟩ = 2 Im α, to the truncation's accuracy
    np.testing.assert_allclose(output.x_means.numpy()[0, 0, 0], 2 * alpha.real, atol=1e-4)
    np.testing.assert_allclose(output.p_means.numpy()[0, 0, 0], 2 * alpha.imag, atol=1e-4)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_two_mode_squeezed_vacuum_heralded_on_n_leaves_number_state_n(engine):
    cutoff, r = 20, 0.3
    # S(r) ⊗ S(−r) then a 50:50 beamsplitter is the two-mode squeezed vacuum Σ_n c_n |n, n⟩; the
    # cutoff drops input pairs with ≥ 20 photons, amplitude tanh(r)^10 ≈ 5e-6
    program = program_of(
        2,
        lambda q: (
            ops.Sgate(r, 0.0) | q[0],
            ops.Sgate(-r, 0.0) | q[1],
            ops.BSgate(np.pi / 4, 0.0) | (q[0], q[1]),
        ),
    )
    engine = ENGINES[engine](cutoff)
    ket = np.asarray(engine.ket(program, {}, 1))[0]
    off_diagonal = ket - np.diag(np.diag(ket))
    assert np.max(np.abs(off_diagonal)) < 1e-5
    output = engine.heralded(program, {}, 1, output_modes=(0,), ancilla_modes=(1,))
    n = np.arange(6)
    expected = np.tanh(r) ** (2 * n) / np.cosh(r) ** 2
    np.testing.assert_allclose(output.probabilities.numpy()[0, :6], expected, atol=1e-6)
    np.testing.assert_allclose(output.x_means.numpy()[0, :6], 0.0, atol=1e-5)
    np.testing.assert_allclose(output.p_means.numpy()[0, :6], 0.0, atol=1e-5)


def test_fifty_fifty_beamsplitter_on_one_photon_heralds_with_probability_one_half():
    cutoff = 4
    one_photon = np.zeros((cutoff, cutoff), complex)
    one_photon[1, 0] = 1.0
    matrix = fock_beamsplitter.beamsplitter_matrix(np.pi / 4, 0.0, cutoff, tf.complex128).numpy()
    ket = np.einsum("abcd,cd->ab", matrix, one_photon)[None]
    output = heralded_moments(tf.constant(ket), output_modes=(0,), ancilla_modes=(1,))
    np.testing.assert_allclose(output.probabilities.numpy()[0], [0.5, 0.5, 0.0, 0.0], atol=1e-12)
    # either way the output mode is left in a number state (|1⟩ or |0⟩): zero means
    np.testing.assert_allclose(output.x_means.numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(output.p_means.numpy(), 0.0, atol=1e-12)
    threshold = heralded_moments(tf.constant(ket), (0,), (1,), detector="threshold")
    np.testing.assert_allclose(threshold.probabilities.numpy()[0], [0.5, 0.5], atol=1e-12)


def test_threshold_click_is_the_probability_weighted_mixture_of_the_photon_numbers():
    rng = np.random.default_rng(4)
    ket = rng.normal(size=(3, 5, 5, 5)) + 1j * rng.normal(size=(3, 5, 5, 5))
    ket /= np.sqrt(np.sum(np.abs(ket) ** 2, axis=(1, 2, 3), keepdims=True)) * 1.02  # trace 0.96
    pnr = heralded_moments(tf.constant(ket), (0, 1), (2,), "pnr")
    threshold = heralded_moments(tf.constant(ket), (0, 1), (2,), "threshold")
    p = pnr.probabilities.numpy()
    np.testing.assert_allclose(threshold.probabilities.numpy(), np.stack([p[:, 0], p[:, 1:].sum(1)], 1))
    click_x = np.sum(p[:, 1:, None] * pnr.x_means.numpy()[:, 1:], axis=1) / p[:, 1:].sum(1)[:, None]
    np.testing.assert_allclose(threshold.x_means.numpy()[:, 1], click_x, rtol=1e-12)
    np.testing.assert_allclose(threshold.x_means.numpy()[:, 0], pnr.x_means.numpy()[:, 0], rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1 / 1.02**2, rtol=1e-12)
    np.testing.assert_allclose(pnr.trace.numpy(), 1 / 1.02**2, rtol=1e-12)


def test_an_outcome_of_probability_zero_has_finite_means_and_gradients():
    cutoff = 6
    theta = tf.Variable(0.3, dtype=tf.float64)
    with tf.GradientTape() as tape:
        ket = fock_gates.coherent_state(theta, 0.0, cutoff, tf.complex128)[None, :, None] * tf.one_hot(
            0, cutoff, dtype=tf.complex128
        )
        output = heralded_moments(ket, (0,), (1,))  # the ancilla is vacuum: outcomes 1.. never happen
        loss = tf.reduce_sum(output.probabilities[..., None] * output.x_means)
    gradient = tape.gradient(loss, theta)
    assert np.all(np.isfinite(output.x_means.numpy()))
    np.testing.assert_allclose(output.x_means.numpy()[0, 1:], 0.0)
    assert np.isfinite(float(gradient))


@pytest.mark.parametrize(
    "modes, cutoff, layers, ancillas, detector", [(2, 8, 2, 1, "pnr"), (3, 6, 1, 2, "threshold")]
)
def test_every_engine_agrees_with_sf_on_heralded_outputs_probabilities_and_gradients(
    modes, cutoff, layers, ancillas, detector, tol, candidate_engine, reference_engine
):
    circuit = build_circuit(modes, layers, reupload=True)
    rng = np.random.default_rng(7 * modes + cutoff)
    arguments = {}
    for group, size in circuit.group_sizes.items():
        scale = 0.25 if group in ("squeeze", "displace", "kerr") else 1.0
        for layer in range(layers):
            for index in range(size):
                name = circuit.parameter_name(group, layer, index)
                arguments[name] = tf.Variable(rng.normal(0.0, scale), dtype=tf.float32)
    for name in circuit.latent_names:
        arguments[name] = tf.Variable(rng.uniform(-0.6, 0.6, 3), dtype=tf.float32)
    ancilla_modes = tuple(range(modes - ancillas, modes))
    weights = None

    def run(engine):
        nonlocal weights
        with tf.GradientTape() as tape:
            output = engine.heralded(circuit.program, arguments, 3, (0,), ancilla_modes, detector)
            if weights is None:
                weights = tf.constant(rng.normal(size=output.x_means.shape), tf.float32)
            value = tf.reduce_sum(
                output.probabilities[..., None] * (output.x_means * weights + output.p_means)
            ) + tf.reduce_sum(output.probabilities * weights[..., 0])
        gradients = tape.gradient(value, list(arguments.values()))
        return output, np.concatenate([np.ravel(gradient.numpy()) for gradient in gradients])

    fock, fock_gradients = run(candidate_engine(cutoff))
    reference, sf_gradients = run(reference_engine(cutoff))
    np.testing.assert_allclose(fock.probabilities.numpy(), reference.probabilities.numpy(), atol=tol)
    np.testing.assert_allclose(fock.trace.numpy(), fock.probabilities.numpy().sum(axis=1), atol=tol)
    # conditional means divide by p_n: compare them where the outcome is not negligible
    likely = reference.probabilities.numpy() > 1e-3
    np.testing.assert_allclose(fock.x_means.numpy()[likely], reference.x_means.numpy()[likely], atol=10 * tol)
    np.testing.assert_allclose(fock.p_means.numpy()[likely], reference.p_means.numpy()[likely], atol=10 * tol)
    floor = 1e-3 * np.max(np.abs(sf_gradients))
    np.testing.assert_allclose(fock_gradients, sf_gradients, rtol=1e-3, atol=floor)
