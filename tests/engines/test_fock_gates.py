"""Gate and beamsplitter matrices against thewalrus (which Strawberry Fields uses) and closed forms."""

import math

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
from thewalrus import fock_gradients

from qgan.engines import fock_beamsplitter, fock_gates

DOUBLE_TOL = 1e-12  # the complex128 matrices are exact to round-off
PARAMETERS = [(0.0, 0.0), (0.3, 0.0), (0.7, 0.4), (1.1, -2.2)]


def ladder(size):
    return np.diag(np.sqrt(np.arange(1, size)), 1)


@pytest.mark.parametrize("cutoff", [2, 6, 11])
@pytest.mark.parametrize("r, phi", PARAMETERS)
def test_single_mode_matrices_equal_thewalrus(r, phi, cutoff):
    displacement = fock_gates.displacement_matrix(r, phi, cutoff, tf.complex128).numpy()
    squeezing = fock_gates.squeezing_matrix(r, phi, cutoff, tf.complex128).numpy()
    np.testing.assert_allclose(
        displacement, fock_gradients.displacement(r, phi, cutoff, np.complex128), atol=DOUBLE_TOL
    )
    np.testing.assert_allclose(
        squeezing, fock_gradients.squeezing(r, phi, cutoff, np.complex128), atol=DOUBLE_TOL
    )


@pytest.mark.parametrize("cutoff", [2, 5, 9])
@pytest.mark.parametrize("theta, phi", PARAMETERS + [(np.pi / 4, np.pi / 2), (2.5, 3.0)])
def test_beamsplitter_equals_thewalrus(theta, phi, cutoff):
    matrix = fock_beamsplitter.beamsplitter_matrix(theta, phi, cutoff, tf.complex128).numpy()
    expected = fock_gradients.beamsplitter(theta, phi, cutoff, np.complex128)
    np.testing.assert_allclose(matrix, expected, atol=DOUBLE_TOL)


@pytest.mark.parametrize("cutoff", [2, 5, 9])
@pytest.mark.parametrize("theta, phi", [(0.7, 0.4), (2.5, 3.0)])
def test_beamsplitter_blocks_are_thewalrus_by_total_photon_number(theta, phi, cutoff):
    blocks = fock_beamsplitter.beamsplitter_blocks(theta, phi, cutoff, tf.complex128).numpy()
    expected = fock_gradients.beamsplitter(theta, phi, cutoff, np.complex128)
    assert blocks.shape == (2 * cutoff - 1, cutoff, cutoff)
    rebuilt = np.zeros_like(expected)
    for total in range(2 * cutoff - 1):
        lowest = max(0, total - cutoff + 1)
        kept = min(total, cutoff - 1) - lowest + 1
        np.testing.assert_array_equal(blocks[total, kept:], 0.0)  # padding slots
        np.testing.assert_array_equal(blocks[total, :, kept:], 0.0)
        for out_slot in range(kept):
            for in_slot in range(kept):
                first_out, first_in = lowest + out_slot, lowest + in_slot
                entry = blocks[total, out_slot, in_slot]
                rebuilt[first_out, total - first_out, first_in, total - first_in] = entry
    np.testing.assert_allclose(rebuilt, expected, atol=DOUBLE_TOL)  # and nothing outside the blocks


def test_matrices_equal_the_exponential_of_their_generators():
    """Against scipy's expm of the generator in a space far larger than the cutoff."""
    big, cutoff = 60, 8
    a = ladder(big)
    alpha = 0.6 * np.exp(0.9j)
    expected = scipy.linalg.expm(alpha * a.T - np.conj(alpha) * a)[:cutoff, :cutoff]
    actual = fock_gates.displacement_matrix(0.6, 0.9, cutoff, tf.complex128).numpy()
    np.testing.assert_allclose(actual, expected, atol=DOUBLE_TOL)
    z = 0.5 * np.exp(-0.7j)
    expected = scipy.linalg.expm((np.conj(z) * a @ a - z * a.T @ a.T) / 2)[:cutoff, :cutoff]
    actual = fock_gates.squeezing_matrix(0.5, -0.7, cutoff, tf.complex128).numpy()
    np.testing.assert_allclose(actual, expected, atol=DOUBLE_TOL)


@pytest.mark.parametrize("cutoff", [2, 6, 11])
@pytest.mark.parametrize("r", [0.0, 0.3, -0.9, 1.7])
def test_real_displacement_matrix_is_the_real_displacement_of_thewalrus(r, cutoff):
    matrix = fock_gates.real_displacement_matrix(r, cutoff, tf.float64)
    assert matrix.dtype == tf.float64
    np.testing.assert_allclose(
        matrix.numpy(), fock_gradients.displacement(r, 0.0, cutoff, np.complex128).real, atol=DOUBLE_TOL
    )


@pytest.mark.parametrize("cutoff", [2, 6, 11])
def test_displacement_slope_is_the_central_difference_of_the_matrix(cutoff):
    r = tf.constant([0.0, 0.3, -0.9, 1.7], tf.float64)
    step = 1e-5
    matrix, slope = fock_gates.real_displacement_and_slope(r, cutoff, tf.float64)
    np.testing.assert_allclose(
        matrix.numpy(), fock_gates.real_displacement_matrix(r, cutoff, tf.float64).numpy(), atol=DOUBLE_TOL
    )
    above = fock_gates.real_displacement_matrix(r + step, cutoff, tf.float64).numpy()
    below = fock_gates.real_displacement_matrix(r - step, cutoff, tf.float64).numpy()
    np.testing.assert_allclose(slope.numpy(), (above - below) / (2 * step), atol=1e-8)
    # at r = 0 the slope is a† − a: +√m just below the diagonal, −√(m+1) just above it
    np.testing.assert_allclose(slope.numpy()[0], ladder(cutoff).T - ladder(cutoff), atol=DOUBLE_TOL)


@pytest.mark.parametrize("theta", [0.0, 0.7, -2.5])
def test_real_beamsplitter_is_the_beamsplitter_without_phase(theta):
    real = fock_beamsplitter.real_beamsplitter_matrix(theta, 5, tf.float64).numpy()
    expected = fock_gradients.beamsplitter(theta, 0.0, 5, np.complex128)
    np.testing.assert_allclose(real, expected.real, atol=DOUBLE_TOL)
    np.testing.assert_allclose(expected.imag, 0.0, atol=DOUBLE_TOL)


def test_displacement_keeps_float64_accuracy_at_a_large_cutoff():
    """Its alternating sums cancel most at large cutoffs and displacements: still about 1e-7 at cutoff 30."""
    big, cutoff, r = 160, 30, -3.0
    a = ladder(big)
    expected = scipy.linalg.expm(r * (a.T - a))[:cutoff, :cutoff]
    actual = fock_gates.real_displacement_matrix(r, cutoff, tf.float64).numpy()
    np.testing.assert_allclose(actual, expected, atol=3e-7)
    np.testing.assert_allclose(actual[:12, :12], expected[:12, :12], atol=DOUBLE_TOL)


def test_coherent_state_closed_form():
    alpha = 0.8 * np.exp(0.6j)
    n = np.arange(9)
    expected = np.exp(-0.32) * alpha**n / np.sqrt([math.factorial(k) for k in n])
    np.testing.assert_allclose(
        fock_gates.coherent_state(0.8, 0.6, 9, tf.complex128).numpy(), expected, atol=DOUBLE_TOL
    )


def test_squeezed_vacuum_closed_form():
    r, phi = 0.4, 1.3
    n = np.arange(0, 10, 2)
    even = (
        (-np.exp(1j * phi) * np.tanh(r)) ** (n // 2)
        * np.sqrt([math.factorial(k) for k in n])
        / (2.0 ** (n // 2) * np.array([math.factorial(k // 2) for k in n]))
        / np.sqrt(np.cosh(r))
    )
    amplitudes = fock_gates.squeezed_vacuum(r, phi, 10, tf.complex128).numpy()
    np.testing.assert_allclose(amplitudes[0::2], even, atol=DOUBLE_TOL)
    np.testing.assert_array_equal(amplitudes[1::2], 0.0)


def test_rotation_and_kerr_phases():
    n = np.arange(7)
    np.testing.assert_allclose(
        fock_gates.number_phases(0.3, 7, 1, tf.complex128).numpy(), np.exp(0.3j * n), atol=DOUBLE_TOL
    )
    np.testing.assert_allclose(
        fock_gates.number_phases(-0.2, 7, 2, tf.complex128).numpy(), np.exp(-0.2j * n**2), atol=DOUBLE_TOL
    )


@pytest.mark.parametrize("theta, phi", [(0.4, 0.0), (1.0, 0.7), (2.2, -1.5)])
def test_beamsplitter_conserves_photon_number_and_is_unitary_on_complete_blocks(theta, phi):
    cutoff = 7
    matrix = fock_beamsplitter.beamsplitter_matrix(theta, phi, cutoff, tf.complex128).numpy()
    levels = np.arange(cutoff)
    total_out = levels[:, None, None, None] + levels[None, :, None, None]
    total_in = levels[None, None, :, None] + levels[None, None, None, :]
    assert np.all(matrix[total_out != total_in] == 0.0)
    flat = matrix.reshape(cutoff**2, cutoff**2)
    # states with N < cutoff photons: their whole block is kept, so the gate is exactly unitary there
    kept = (levels[:, None] + levels[None, :]).reshape(-1) < cutoff
    block = flat[np.ix_(kept, kept)]
    np.testing.assert_allclose(block.conj().T @ block, np.eye(kept.sum()), atol=DOUBLE_TOL)
    # nothing leaks from the complete blocks into the incomplete ones
    assert np.all(flat[np.ix_(~kept, kept)] == 0.0)


@pytest.mark.parametrize(
    "build",
    [
        lambda cutoff: fock_gates.displacement_matrix(0.5, 0.3, cutoff, tf.complex128),
        lambda cutoff: fock_gates.squeezing_matrix(0.3, -0.4, cutoff, tf.complex128),
    ],
    ids=["displacement", "squeezing"],
)
def test_single_mode_gates_are_unitary_where_the_cutoff_holds_their_image(build):
    """The columns of low Fock levels have all their weight inside a large cutoff."""
    matrix = build(60).numpy()[:, :6]
    np.testing.assert_allclose(matrix.conj().T @ matrix, np.eye(6), atol=DOUBLE_TOL)


def test_rotation_and_kerr_are_unitary():
    for power in (1, 2):
        phases = fock_gates.number_phases(tf.constant([0.3, -1.7]), 9, power).numpy()
        np.testing.assert_allclose(np.abs(phases), 1.0, atol=1e-6)


def test_batched_parameters_give_the_stack_of_single_matrices():
    r = tf.constant([0.1, 0.5, 0.9], tf.float64)
    phi = tf.constant(0.3, tf.float64)
    for build in (
        fock_gates.displacement_matrix,
        fock_gates.squeezing_matrix,
        fock_beamsplitter.beamsplitter_matrix,
    ):
        batched = build(r, phi, 5, tf.complex128).numpy()
        single = np.stack([build(float(value), 0.3, 5, tf.complex128).numpy() for value in r.numpy()])
        np.testing.assert_allclose(batched, single, atol=DOUBLE_TOL, err_msg=build.__name__)
    batched = fock_gates.real_displacement_matrix(r, 5, tf.float64).numpy()
    single = np.stack(
        [fock_gates.real_displacement_matrix(float(value), 5, tf.float64) for value in r.numpy()]
    )
    np.testing.assert_allclose(batched, single, atol=DOUBLE_TOL)


def test_complex64_matrices_stay_close_to_complex128():
    for build in (
        fock_gates.displacement_matrix,
        fock_gates.squeezing_matrix,
        fock_beamsplitter.beamsplitter_matrix,
    ):
        single = build(0.8, 0.5, 12, tf.complex64).numpy()
        double = build(0.8, 0.5, 12, tf.complex128).numpy()
        np.testing.assert_allclose(single, double, atol=2e-6, err_msg=build.__name__)
