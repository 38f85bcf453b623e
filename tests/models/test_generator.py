"""Tests of QuantumGenerator on both engines, against closed forms and finite differences."""

import math

import numpy as np
import pytest
import tensorflow as tf

from qgan.models.generator import QuantumGenerator

ENGINES = ("fock", "sf")


def zero_weights(generator):
    for weight in generator.group_weights.values():
        weight.assign(tf.zeros_like(weight))


def coherent_amplitudes(alpha, cutoff):
    n = np.arange(cutoff)
    return np.exp(-(alpha**2) / 2) * alpha**n / np.sqrt([math.factorial(k) for k in n])


def truncated_coherent_x_and_trace(alphas, cutoff):
    """⟨x⟩ per mode (ħ = 2, not divided by the trace) and the trace of a product of real coherent states."""
    amplitudes = [coherent_amplitudes(alpha, cutoff) for alpha in alphas]
    traces = [np.sum(c**2) for c in amplitudes]
    x_single = [2 * np.sum(c[:-1] * c[1:] * np.sqrt(np.arange(1, cutoff))) for c in amplitudes]
    x = [
        x_single[mode] * np.prod([traces[other] for other in range(len(alphas)) if other != mode])
        for mode in range(len(alphas))
    ]
    return np.array(x), np.prod(traces)


@pytest.mark.parametrize("engine", ENGINES)
def test_identity_layers_give_the_latent_coherent_state(engine):
    cutoff = 6
    generator = QuantumGenerator(modes=2, layers=2, cutoff=cutoff, latent_scale=1.3, seed=0, engine=engine)
    zero_weights(generator)
    z = np.array([[0.0, 0.0], [0.5, -1.0], [1.0, 0.25]], np.float32)
    coordinates, trace = generator(z, return_trace=True)
    for row, latent in enumerate(z):
        x, expected_trace = truncated_coherent_x_and_trace(1.3 * latent, cutoff)
        np.testing.assert_allclose(coordinates[row].numpy(), x, atol=1e-5)
        assert float(trace[row]) == pytest.approx(expected_trace, abs=1e-5)
    # at cutoff 6 the state with |α| = 1.3 visibly leaves the cutoff
    assert float(trace[1]) < 0.995


@pytest.mark.parametrize("engine", ENGINES)
def test_layer_displacement_adds_to_the_latent_one_with_its_closed_form_gradient(engine):
    generator = QuantumGenerator(modes=2, layers=2, cutoff=14, max_displacement=0.8, seed=0, engine=engine)
    zero_weights(generator)
    weight = 0.4
    displacement = generator.group_weights["displace"]
    displacement.assign([[0.0, 0.0], [weight, 0.0]])
    z = np.array([[0.3, -0.2]], np.float32)
    with tf.GradientTape() as tape:
        coordinates = generator(z)
        x0 = coordinates[0, 0]
    gradient = tape.gradient(x0, displacement).numpy()
    expected_x0 = 2 * (0.3 + 0.8 * np.tanh(weight))
    assert float(coordinates[0, 0]) == pytest.approx(expected_x0, abs=2e-5)
    assert float(coordinates[0, 1]) == pytest.approx(-0.4, abs=2e-5)
    assert gradient[1, 0] == pytest.approx(2 * 0.8 / np.cosh(weight) ** 2, abs=1e-4)


def test_readout_is_a_scale_and_shift_per_output():
    generator = QuantumGenerator(modes=2, layers=1, cutoff=10, seed=0)
    zero_weights(generator)
    generator.readout_scale.assign([2.0, -1.0])
    generator.readout_shift.assign([0.5, 0.25])
    coordinates = generator(np.array([[0.25, 0.5]], np.float32)).numpy()
    np.testing.assert_allclose(coordinates[0], [2.0 * 0.5 + 0.5, -1.0 * 1.0 + 0.25], atol=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("modes, layers", [(2, 1), (3, 2)])
def test_shape_and_trace_for_random_weights(modes, layers, engine):
    generator = QuantumGenerator(modes=modes, layers=layers, cutoff=5, init_std=0.5, seed=1, engine=engine)
    z = generator.sample_latent(7, seed=0)
    coordinates, trace = generator(z, return_trace=True)
    assert coordinates.shape == (7, 2)
    assert trace.shape == (7,)
    assert np.all(trace.numpy() <= 1.0 + 1e-5)
    assert np.all(trace.numpy() > 0.0)
    assert np.all(np.isfinite(coordinates.numpy()))


@pytest.mark.parametrize("engine", ENGINES)
def test_gradients_match_central_finite_differences(engine):
    generator = QuantumGenerator(modes=2, layers=1, cutoff=6, init_std=0.4, seed=3, engine=engine)
    z = np.array([[0.2, -0.4], [-0.7, 0.5]], np.float32)
    direction = tf.constant([[1.0, -0.5], [0.3, 0.8]])

    def objective():
        coordinates, trace = generator(z, return_trace=True)
        return tf.reduce_sum(coordinates * direction) + tf.reduce_sum(trace)

    with tf.GradientTape() as tape:
        value = objective()
    variables = generator.trainable_variables
    analytic = tape.gradient(value, variables)
    step = 1e-2
    for variable, gradient in zip(variables, analytic):
        original = variable.numpy()
        numeric = np.zeros_like(original)
        for index in np.ndindex(original.shape):
            shifted = original.copy()
            shifted[index] += step
            variable.assign(shifted)
            up = float(objective())
            shifted[index] -= 2 * step
            variable.assign(shifted)
            down = float(objective())
            numeric[index] = (up - down) / (2 * step)
        variable.assign(original)
        np.testing.assert_allclose(gradient.numpy(), numeric, rtol=2e-2, atol=2e-3, err_msg=variable.path)


def test_every_weight_gets_a_gradient():
    generator = QuantumGenerator(modes=2, layers=2, cutoff=6, init_std=0.3, seed=0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(generator(generator.sample_latent(4, seed=1)))
    grads = tape.gradient(loss, generator.trainable_variables)
    assert all(grad is not None and np.any(grad.numpy() != 0) for grad in grads)


def test_set_weights_carries_a_generator_over():
    source = QuantumGenerator(modes=2, layers=2, cutoff=6, init_std=0.3, seed=1)
    copy = QuantumGenerator(modes=2, layers=2, cutoff=6, init_std=0.3, seed=2)
    z = np.array([[0.1, 0.9], [-0.6, 0.2]], np.float32)
    assert not np.allclose(source(z), copy(z))
    assert [w.name for w in source.weights] == [w.name for w in copy.weights]
    copy.set_weights(source.get_weights())
    np.testing.assert_array_equal(source(z).numpy(), copy(z).numpy())


def test_bounded_gates_stay_within_their_maxima():
    generator = QuantumGenerator(
        modes=2, layers=1, cutoff=4, max_squeeze=0.3, max_displacement=0.7, max_kerr=0.2
    )
    for weight in generator.group_weights.values():
        weight.assign(tf.fill(weight.shape, 100.0))
    parameters = generator.gate_parameters()
    np.testing.assert_allclose(parameters["squeeze"].numpy(), 0.3)
    np.testing.assert_allclose(parameters["displace"].numpy(), 0.7)
    np.testing.assert_allclose(parameters["kerr"].numpy(), 0.2)
    np.testing.assert_allclose(parameters["int1_theta"].numpy(), 100.0)


def test_bad_construction_is_a_clear_error():
    with pytest.raises(ValueError, match="output_dim 3 exceeds the number of modes 2"):
        QuantumGenerator(modes=2, output_dim=3)
    with pytest.raises(ValueError, match="unknown engine 'warp'; allowed: fock, sf"):
        QuantumGenerator(engine="warp")
    with pytest.raises(ValueError, match="cutoff must be at least 2"):
        QuantumGenerator(cutoff=1)


def test_engines_give_the_same_generator_outputs_and_generate_compiles(tol):
    fock = QuantumGenerator(modes=2, layers=2, cutoff=8, init_std=0.3, seed=4, engine="fock")
    reference = QuantumGenerator(modes=2, layers=2, cutoff=8, init_std=0.3, seed=4, engine="sf")
    reference.set_weights(fock.get_weights())
    z = fock.sample_latent(6, seed=2)
    np.testing.assert_allclose(fock(z).numpy(), reference(z).numpy(), atol=tol)
    coordinates, trace = fock.generate(10, chunk_size=4, seed=5)
    expected, expected_trace = reference.generate(10, chunk_size=4, seed=5)
    assert coordinates.shape == (10, 2) and trace.shape == (10,)
    np.testing.assert_allclose(coordinates, expected, atol=tol)
    np.testing.assert_allclose(trace, expected_trace, atol=tol)


def test_reuploading_with_zero_later_weights_is_the_plain_circuit(tol):
    plain = QuantumGenerator(modes=2, layers=3, cutoff=8, init_std=0.3, seed=3)
    reupload = QuantumGenerator(modes=2, layers=3, cutoff=8, init_std=0.3, seed=3, reupload=True)
    assert reupload.latent_weights.shape == (3, 2)
    np.testing.assert_array_equal(reupload.latent_weights.numpy(), np.full((3, 2), 1 / 3, np.float32))
    for group, weight in plain.group_weights.items():
        reupload.group_weights[group].assign(weight)
    reupload.latent_weights.assign([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    z = plain.sample_latent(5, seed=1)
    np.testing.assert_allclose(reupload(z).numpy(), plain(z).numpy(), atol=tol)
    reupload.latent_weights.assign([[1.0, 1.0], [0.5, 0.0], [0.0, 0.0]])
    assert np.max(np.abs(reupload(z).numpy() - plain(z).numpy())) > 0.05


def test_reuploading_latent_weights_match_central_finite_differences():
    generator = QuantumGenerator(modes=2, layers=2, cutoff=10, init_std=0.3, seed=5, reupload=True)
    z = tf.constant([[0.4, -0.7], [-0.2, 0.9]], tf.float32)
    weights = generator.latent_weights
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(generator(z) * [[1.0, -0.5]])
    gradient = tape.gradient(total, weights).numpy()
    base = weights.numpy().copy()
    step = 1e-2
    numeric = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        values = []
        for sign in (1, -1):
            shifted = base.copy()
            shifted[index] += sign * step
            weights.assign(shifted)
            values.append(float(tf.reduce_sum(generator(z) * [[1.0, -0.5]])))
        numeric[index] = (values[0] - values[1]) / (2 * step)
    weights.assign(base)
    np.testing.assert_allclose(gradient, numeric, rtol=2e-3, atol=2e-3)


def test_reuploading_weights_start_at_one_over_the_number_of_layers():
    generator = QuantumGenerator(modes=2, layers=4, cutoff=6, reupload=True, seed=0)
    np.testing.assert_array_equal(generator.latent_weights.numpy(), np.full((4, 2), 0.25, np.float32))


@pytest.mark.parametrize("engine", ENGINES)
def test_heralded_identity_circuit_gives_poisson_outcomes_and_the_latent_coherent_means(engine):
    cutoff, scale, offset = 14, 0.5, 1.2
    generator = QuantumGenerator(
        modes=2,
        layers=1,
        cutoff=cutoff,
        latent_scale=scale,
        readout="heralded",
        ancilla_offset=offset,
        engine=engine,
        seed=0,
    )
    zero_weights(generator)
    assert generator.outcomes == cutoff and generator.latent_dim == 3
    z = np.array([[0.4, -0.5, 0.0], [-1.0, 1.0, 0.0]], np.float32)
    coordinates, probabilities, trace = (value.numpy() for value in generator.mixture(z))
    for row, (z0, z1, _) in enumerate(z):
        signal = coherent_amplitudes(scale * z0, cutoff)
        ancilla = coherent_amplitudes(scale * z1 + offset, cutoff) ** 2
        np.testing.assert_allclose(probabilities[row], ancilla * np.sum(signal**2), atol=2e-6)
        mean_a = np.sum(signal[:-1] * signal[1:] * np.sqrt(np.arange(1, cutoff))) / np.sum(signal**2)
        likely = ancilla > 1e-4
        np.testing.assert_allclose(coordinates[row, likely, 0], 2 * mean_a, atol=1e-4)
        np.testing.assert_allclose(coordinates[row, likely, 1], 0.0, atol=1e-4)
    np.testing.assert_allclose(trace, probabilities.sum(axis=1), atol=1e-6)


def test_draw_outcome_is_the_inverse_cdf_of_the_normalised_probabilities():
    from qgan.models.coordinate_generator import draw_outcome

    probabilities = tf.constant([[0.1, 0.3, 0.0, 0.4], [0.1, 0.3, 0.0, 0.4], [0.5, 0.0, 0.0, 0.0]])
    # u = (z + 1)/2 scaled by the row sum 0.8: thresholds 0.08, 0.4, 0.56 (rows 0-1) and 0.25 (row 2)
    drawn = draw_outcome(probabilities, tf.constant([-0.8, 0.4, 0.99]))
    assert drawn.numpy().tolist() == [0, 3, 0]
    drawn = draw_outcome(probabilities[:2], tf.constant([-0.1, 1.0]))  # thresholds 0.36 and 0.8
    assert drawn.numpy().tolist() == [1, 3]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_heralded_samples_are_the_drawn_outcomes_coordinates_eagerly_and_compiled(jit_compile):
    generator = QuantumGenerator(
        modes=3,
        layers=2,
        cutoff=5,
        readout="heralded",
        ancillas=2,
        detector="threshold",
        quadratures="xp",
        init_std=0.3,
        ancilla_offset=1.0,
        seed=2,
        jit_compile=jit_compile,
        reupload=True,
    )
    assert (generator.outcomes, generator.output_modes, generator.ancilla_modes) == (4, (0,), (1, 2))
    samples, trace, outcomes = generator.generate(40, chunk_size=20, seed=3, outcomes=True)
    z = np.random.default_rng(3).uniform(-1.0, 1.0, size=(40, 4)).astype(np.float32)
    coordinates, probabilities, expected_trace = generator.mixture(z)
    weights = probabilities.numpy() / probabilities.numpy().sum(axis=1, keepdims=True)
    expected_outcomes = np.sum(np.cumsum(weights, axis=1)[:, :-1] < ((z[:, -1] + 1) / 2)[:, None], axis=1)
    np.testing.assert_array_equal(outcomes, expected_outcomes)
    np.testing.assert_allclose(samples, coordinates.numpy()[np.arange(40), expected_outcomes], atol=1e-5)
    np.testing.assert_allclose(trace, expected_trace.numpy(), atol=1e-6)
    assert len(set(outcomes.tolist())) > 1


@pytest.mark.parametrize("readout", ["expectation", "heralded"])
def test_the_compiled_generator_grows_little_with_depth(readout):
    def instructions(layers):
        generator = QuantumGenerator(modes=2, layers=layers, cutoff=4, reupload=True, readout=readout, seed=0)
        z = tf.constant(np.random.default_rng(0).uniform(-1, 1, (3, generator.latent_dim)), tf.float32)

        def forward_backward(z):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(generator(z))
            return tape.gradient(loss, generator.trainable_variables)

        step = tf.function(forward_backward, jit_compile=True, autograph=False)
        hlo = step.experimental_get_compiler_ir(z)(stage="hlo")
        return sum(" = " in line for line in hlo.splitlines())

    two, eight = instructions(2), instructions(8)
    # each gate parameter's layers reach the engine as one slice of its weight (TableEntry): about
    # 63 instructions per layer, where a scalar slice per layer and parameter, stacked again by
    # the engine, took about 200
    assert two > 2000 and (eight - two) / 6 < 80, (two, eight)
