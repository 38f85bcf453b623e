"""Real detectors: closed forms, Strawberry Fields' mixed-state fock backend with a LossChannel, gradients."""

import math

import numpy as np
import pytest
import strawberryfields as sf
import tensorflow as tf
from strawberryfields import ops

from qgan.engines import FockEngine
from qgan.engines.detectors import Detector, beyond_cutoff, count_probabilities, detector_matrix
from qgan.engines.measurement import heralded_moments
from qgan.models.circuits import build_circuit
from qgan.models.generator import QuantumGenerator


def coherent(alpha, cutoff):
    n = np.arange(cutoff)
    return np.exp(-(abs(alpha) ** 2) / 2) * alpha**n / np.sqrt([float(math.factorial(k)) for k in n])


def poisson(mean, count):
    return np.array([math.exp(-mean) * mean**k / math.factorial(k) for k in range(count)])


def test_a_coherent_state_counted_with_efficiency_eta_is_poisson_of_eta_alpha_squared():
    cutoff, alpha, eta = 24, 1.3 * np.exp(0.4j), 0.6
    # mode 0 the vacuum, the ancilla (mode 1) coherent: a product ket
    ket = np.outer(np.eye(cutoff)[0], coherent(alpha, cutoff))[None].astype(np.complex128)
    output = heralded_moments(tf.constant(ket), (0,), (1,), Detector("pnr", eta))
    expected = poisson(eta * abs(alpha) ** 2, cutoff)
    np.testing.assert_allclose(output.probabilities.numpy()[0, :-1], expected[:-1], atol=1e-12)
    # the last outcome holds every count ≥ cutoff − 1: the probabilities still sum to the trace
    assert output.probabilities.numpy()[0].sum() == pytest.approx(np.sum(np.abs(ket) ** 2), abs=1e-12)


@pytest.mark.parametrize("kind", ["pnr", "threshold"])
@pytest.mark.parametrize("ancillas", [1, 2])
def test_an_ideal_detector_is_the_exact_zero_one_matrix_of_before(kind, ancillas):
    matrix = detector_matrix(5, ancillas, Detector(kind, 1.0, 0.0))
    if kind == "pnr":
        np.testing.assert_array_equal(matrix, np.eye(5**ancillas))
    else:
        patterns = np.array(list(np.ndindex((5,) * ancillas)))
        clicks = (patterns > 0).astype(int) @ (2 ** np.arange(ancillas)[::-1])
        np.testing.assert_array_equal(matrix, np.eye(2**ancillas)[clicks])


def test_an_ideal_generator_gives_bit_identical_outputs_with_explicit_ideal_detector_flags():
    z = np.random.default_rng(0).uniform(-1, 1, size=(8, 3)).astype(np.float32)
    common = dict(modes=2, layers=1, cutoff=5, seed=1, readout="heralded", jit_compile=False)
    implicit = QuantumGenerator(**common).mixture(z)
    explicit = QuantumGenerator(**common, detector_efficiency=1.0, dark_counts=0.0, output_loss=1.0).mixture(
        z
    )
    for ours, theirs in zip(implicit, explicit):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("eta, nu", [(1.0, 0.0), (0.7, 0.0), (0.5, 0.3), (1.0, 0.1)])
def test_a_threshold_detector_is_silent_on_n_photons_with_probability_of_loss_to_the_n_and_no_dark_count(
    eta, nu
):
    matrix = detector_matrix(8, 1, Detector("threshold", eta, nu))
    np.testing.assert_allclose(matrix[:, 0], (1 - eta) ** np.arange(8) * np.exp(-nu), rtol=1e-12)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-12)


def test_count_probabilities_are_the_binomial_convolved_with_poisson_and_fold_the_tail():
    cutoff, eta, nu = 6, 0.8, 0.4
    counts = count_probabilities(cutoff, eta, nu)
    np.testing.assert_allclose(counts.sum(axis=1), 1.0, rtol=1e-12)
    n = 3
    binomial = np.array([math.comb(n, k) * eta**k * (1 - eta) ** (n - k) for k in range(cutoff)])
    untruncated = np.convolve(binomial, poisson(nu, 20))
    np.testing.assert_allclose(counts[n, :-1], untruncated[: cutoff - 1], rtol=1e-12)
    assert beyond_cutoff(cutoff, eta, nu)[n] == pytest.approx(untruncated[cutoff:].sum(), rel=1e-9)
    assert counts[n, -1] == pytest.approx(untruncated[cutoff - 1 :].sum(), rel=1e-12)


@pytest.mark.parametrize("efficiency, dark_counts", [(-0.1, 0.0), (0.0, 0.0), (1.5, 0.0), (0.9, -1.0)])
def test_impossible_detectors_are_refused(efficiency, dark_counts):
    with pytest.raises(ValueError, match="not allowed"):
        Detector("pnr", efficiency, dark_counts)


def with_dark_counts(per_count, nu):
    """Values per count (probabilities, or ⟨ψ|Π_k a|ψ⟩) after adding a Poisson count of mean ν, counts
    ≥ cutoff − 1 folded into the last."""
    cutoff = len(per_count)
    dark = poisson(nu, cutoff)
    full = np.convolve(per_count, dark)
    folded = np.concatenate([full[: cutoff - 1], [full[cutoff - 1 :].sum()]])
    folded[-1] += np.sum(per_count) * (1 - dark.sum())  # the Poisson tail beyond cutoff − 1
    return folded


def random_circuit(modes, layers, seed):
    """The generator's circuit with random numbers for every free parameter, as {name: value}."""
    circuit = build_circuit(modes, layers)
    rng = np.random.default_rng(seed)
    names = [parameter.name for parameter in circuit.program.free_params.values()]
    values = {name: rng.uniform(-0.4, 0.4) for name in names}
    for name in names:
        if name.startswith("latent"):
            values[name] = rng.uniform(-0.3, 0.3) + (0.8 if name.endswith(f"_{modes - 1}") else 0.0)
    return circuit, values


def sf_lossy_reference(circuit, values, cutoff, eta):
    """p_k and the unnormalised ⟨ψ|Π_k a₀|ψ⟩ of the last mode counted after SF's LossChannel(η)."""
    modes = circuit.modes
    with circuit.program.context as q:
        ops.LossChannel(eta) | q[modes - 1]
    state = sf.Engine("fock", backend_options={"cutoff_dim": cutoff}).run(circuit.program, args=values).state
    rho = state.reduced_dm([0, modes - 1]) if modes > 2 else state.dm()  # (i0, j0, i_anc, j_anc)
    lowering = np.diag(np.sqrt(np.arange(1, cutoff)), 1)
    probabilities = np.array([np.trace(rho[:, :, k, k]).real for k in range(cutoff)])
    lowered = np.array([np.trace(lowering @ rho[:, :, k, k]) for k in range(cutoff)])
    return probabilities, lowered


@pytest.mark.parametrize("modes, cutoff", [(2, 6), (2, 8), (2, 10), (3, 6), (3, 7)])
def test_lossy_counting_and_dark_counts_agree_with_strawberry_fields_loss_channel(modes, cutoff):
    eta, nu = 0.75, 0.2
    circuit, values = random_circuit(modes, 1, seed=modes * 10 + cutoff)
    engine = FockEngine(cutoff, dtype=tf.complex128)
    arguments = {name: tf.constant(value, tf.float64) for name, value in values.items()}
    ket = engine.ket(circuit.program, arguments, 1)
    reference_p, reference_a = sf_lossy_reference(circuit, values, cutoff, eta)
    lossy = heralded_moments(ket, (0,), (modes - 1,), Detector("pnr", eta))
    np.testing.assert_allclose(lossy.probabilities.numpy()[0], reference_p, atol=1e-6)
    conditional = reference_a / reference_p
    np.testing.assert_allclose(lossy.x_means.numpy()[0, :, 0], 2 * conditional.real, atol=1e-6)
    np.testing.assert_allclose(lossy.p_means.numpy()[0, :, 0], 2 * conditional.imag, atol=1e-6)
    # dark counts: SF's lossy counts convolved with the Poisson law in NumPy, the tail folded in
    folded_p, folded_a = with_dark_counts(reference_p, nu), with_dark_counts(reference_a, nu)
    noisy = heralded_moments(ket, (0,), (modes - 1,), Detector("pnr", eta, nu))
    np.testing.assert_allclose(noisy.probabilities.numpy()[0], folded_p, atol=1e-6)
    np.testing.assert_allclose(noisy.x_means.numpy()[0, :, 0], 2 * (folded_a / folded_p).real, atol=1e-6)
    np.testing.assert_allclose(noisy.p_means.numpy()[0, :, 0], 2 * (folded_a / folded_p).imag, atol=1e-6)


def test_an_output_loss_scales_the_mean_by_the_root_of_the_transmission_as_sf_loss_channel_does():
    program = sf.Program(1)
    with program.context as q:
        ops.Dgate(0.7, 0.5) | q[0]
        ops.Sgate(0.3, 0.2) | q[0]
        ops.LossChannel(0.64) | q[0]
    state = sf.Engine("fock", backend_options={"cutoff_dim": 20}).run(program).state
    mean_a = np.trace(np.diag(np.sqrt(np.arange(1, 20)), 1) @ state.reduced_dm(0))
    program_lossless = sf.Program(1)
    with program_lossless.context as q:
        ops.Dgate(0.7, 0.5) | q[0]
        ops.Sgate(0.3, 0.2) | q[0]
    ket = sf.Engine("fock", backend_options={"cutoff_dim": 20}).run(program_lossless).state.ket()
    lossless = np.sum(ket[:-1].conj() * ket[1:] * np.sqrt(np.arange(1, 20)))
    assert mean_a == pytest.approx(np.sqrt(0.64) * lossless, abs=1e-8)
    z = np.random.default_rng(1).uniform(-1, 1, size=(4, 3)).astype(np.float32)
    common = dict(modes=2, layers=1, cutoff=6, seed=2, readout="heralded", jit_compile=False)
    full, lossy = QuantumGenerator(**common), QuantumGenerator(**common, output_loss=0.64)
    np.testing.assert_allclose(lossy.mixture(z)[0].numpy(), 0.8 * full.mixture(z)[0].numpy(), rtol=1e-6)


@pytest.mark.slow
def test_gradients_with_an_imperfect_detector_agree_between_fock_and_sf():
    z = np.random.default_rng(3).uniform(-1, 1, size=(3, 3)).astype(np.float32)
    common = dict(modes=2, layers=1, cutoff=5, seed=4, readout="heralded", jit_compile=False)
    imperfect = dict(detector_efficiency=0.8, dark_counts=0.1)
    results = []
    for engine in ("fock", "sf"):
        generator = QuantumGenerator(engine=engine, **common, **imperfect)
        with tf.GradientTape() as tape:
            coordinates, probabilities, _ = generator.mixture(z)
            loss = tf.reduce_sum(coordinates * probabilities[..., None] * [[[0.3, -0.7]]]) + tf.reduce_sum(
                probabilities**2
            )
        results.append((float(loss), tape.gradient(loss, generator.trainable_variables)))
    (fock_loss, fock_grads), (sf_loss, sf_grads) = results
    assert fock_loss == pytest.approx(sf_loss, rel=1e-5)
    for ours, theirs in zip(fock_grads, sf_grads):
        scale = max(np.max(np.abs(theirs.numpy())), 1e-6)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-3 * scale)
