"""The fock engine against Strawberry Fields, central finite differences and closed forms."""

import types

import numpy as np
import pytest
import strawberryfields as sf
import tensorflow as tf
from strawberryfields import ops

from qgan.engines import FockEngine, StrawberryFieldsEngine, UnsupportedOperationError
from qgan.models.circuits import build_circuit

BATCH = 3


def random_arguments(circuit, rng, dtype=tf.float32, batch=BATCH):
    """A tf.Variable per free parameter: shared gate arguments and per-sample latent displacements."""
    arguments = {}
    for group, size in circuit.group_sizes.items():
        scale = 0.25 if group in ("squeeze", "displace", "kerr") else 1.0
        for layer in range(circuit.layers):
            for index in range(size):
                value = rng.normal(0.0, scale)
                arguments[circuit.parameter_name(group, layer, index)] = tf.Variable(value, dtype=dtype)
    for name in circuit.latent_names:
        arguments[name] = tf.Variable(rng.uniform(-0.8, 0.8, batch), dtype=dtype)
    return arguments


def objective(engine, circuit, arguments, weights, batch=BATCH):
    output = engine.run(circuit.program, arguments, batch)
    return tf.reduce_sum(output.x_means * weights) + tf.reduce_sum(output.trace), output


def value_and_gradients(engine, circuit, arguments, weights):
    with tf.GradientTape() as tape:
        value, output = objective(engine, circuit, arguments, weights)
    gradients = tape.gradient(value, list(arguments.values()))
    return output, np.concatenate([np.ravel(gradient.numpy()) for gradient in gradients])


def assert_engines_agree(circuit, cutoff, rng, tol, candidate=FockEngine, reference=StrawberryFieldsEngine):
    """The candidate engine and the reference give the same outputs and traces (to tol) and gradients
    (to rtol 1e-3)."""
    arguments = random_arguments(circuit, rng)
    weights = tf.constant(rng.normal(size=circuit.modes), tf.float32)
    fock_output, fock_gradients = value_and_gradients(candidate(cutoff), circuit, arguments, weights)
    sf_output, sf_gradients = value_and_gradients(reference(cutoff), circuit, arguments, weights)
    np.testing.assert_allclose(fock_output.x_means.numpy(), sf_output.x_means.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(fock_output.trace.numpy(), sf_output.trace.numpy(), rtol=0, atol=tol)
    # relative 1e-3 per parameter; a floor of 1e-3 of the largest gradient absorbs float32 round-off
    # of components that are nearly zero
    floor = 1e-3 * np.max(np.abs(sf_gradients))
    np.testing.assert_allclose(fock_gradients, sf_gradients, rtol=1e-3, atol=floor * 1e-3 + 1e-6)


@pytest.mark.parametrize(
    "modes, cutoff, layers",
    [(1, 6, 1), (1, 14, 4), (2, 6, 2), (2, 9, 1), (2, 12, 3), (2, 14, 2), (3, 6, 4), (3, 8, 1), (3, 10, 2)],
)
def test_every_engine_agrees_with_sf_on_outputs_and_every_gradient(
    modes, cutoff, layers, tol, candidate_engine, reference_engine
):
    rng = np.random.default_rng(100 * modes + cutoff + layers)
    assert_engines_agree(build_circuit(modes, layers), cutoff, rng, tol, candidate_engine, reference_engine)


@pytest.mark.parametrize("modes, cutoff, layers", [(1, 8, 2), (2, 6, 2), (3, 5, 1)])
def test_fock_gradients_match_central_finite_differences(modes, cutoff, layers):
    rng = np.random.default_rng(modes + layers)
    circuit = build_circuit(modes, layers)
    arguments = random_arguments(circuit, rng, tf.float64)
    weights = tf.constant(rng.normal(size=modes), tf.float64)
    engine = FockEngine(cutoff, dtype=tf.complex128)
    _, analytic = value_and_gradients(engine, circuit, arguments, weights)
    numeric = []
    step = 1e-6
    for variable in arguments.values():
        original = np.array(variable.numpy())
        for index in np.ndindex(original.shape):
            shifted = original.copy()
            shifted[index] += step
            variable.assign(shifted)
            up = float(objective(engine, circuit, arguments, weights)[0])
            shifted[index] -= 2 * step
            variable.assign(shifted)
            down = float(objective(engine, circuit, arguments, weights)[0])
            variable.assign(original)
            numeric.append((up - down) / (2 * step))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def one_mode_program(*gates):
    program = sf.Program(1)
    with program.context as q:
        for gate in gates:
            gate | q[0]
    return program


def run_double(program, cutoff=40, batch=1):
    output = FockEngine(cutoff, dtype=tf.complex128).run(program, {}, batch)
    return output.x_means.numpy(), output.trace.numpy()


def test_coherent_state_x_mean_is_twice_the_real_part_of_alpha():
    for r, phi in [(0.0, 0.0), (0.9, 0.0), (1.3, 0.7), (0.5, -2.4)]:
        x_means, trace = run_double(one_mode_program(ops.Dgate(r, phi)))
        assert x_means[0, 0] == pytest.approx(2 * r * np.cos(phi), abs=1e-12)
        assert trace[0] == pytest.approx(1.0, abs=1e-12)


def test_rotation_and_kerr_of_a_coherent_state():
    r, phi, angle, kappa = 0.8, 0.3, 0.5, 0.2
    x_means, _ = run_double(one_mode_program(ops.Dgate(r, phi), ops.Rgate(angle)))
    assert x_means[0, 0] == pytest.approx(2 * r * np.cos(phi + angle), abs=1e-12)
    # ⟨a⟩ of K(κ)|α⟩ = α e^{iκ} exp(|α|²(e^{2iκ} − 1)) for K(κ) = exp(iκ n²)
    x_means, _ = run_double(one_mode_program(ops.Dgate(r, phi), ops.Kgate(kappa)))
    alpha = r * np.exp(1j * phi)
    expected = 2 * np.real(alpha * np.exp(1j * kappa) * np.exp(r**2 * (np.exp(2j * kappa) - 1)))
    assert x_means[0, 0] == pytest.approx(expected, abs=1e-12)


def test_displaced_squeezed_state_and_truncation_loss():
    x_means, trace = run_double(one_mode_program(ops.Sgate(0.6), ops.Dgate(0.7)), cutoff=70)
    assert x_means[0, 0] == pytest.approx(1.4, abs=1e-12)
    assert trace[0] == pytest.approx(1.0, abs=1e-12)
    # at a small cutoff the state leaks out: the trace is the kept weight of the coherent state
    x_means, trace = run_double(one_mode_program(ops.Dgate(1.5)), cutoff=4)
    kept = np.exp(-2.25) * sum(2.25**n / np.prod(range(1, n + 1)) for n in range(4))
    assert trace[0] == pytest.approx(kept, abs=1e-12)


def test_beamsplitter_maps_coherent_states_and_conserves_photon_number():
    theta, phi, alpha, beta = 0.6, 0.4, 0.9, -0.5
    program = sf.Program(2)
    with program.context as q:
        ops.Dgate(alpha) | q[0]
        ops.Dgate(beta) | q[1]
        ops.BSgate(theta, phi) | (q[0], q[1])
    output = FockEngine(20, dtype=tf.complex128).run(program, {}, 1)
    # |α, β⟩ → |α cos θ − β e^{−iφ} sin θ, β cos θ + α e^{iφ} sin θ⟩
    first = alpha * np.cos(theta) - beta * np.exp(-1j * phi) * np.sin(theta)
    second = beta * np.cos(theta) + alpha * np.exp(1j * phi) * np.sin(theta)
    np.testing.assert_allclose(output.x_means.numpy()[0], [2 * first.real, 2 * second.real], atol=1e-12)
    # mean photon number |α|² + |β|² is unchanged
    assert abs(first) ** 2 + abs(second) ** 2 == pytest.approx(alpha**2 + beta**2, abs=1e-12)


def test_eager_graph_and_xla_give_the_same_outputs(tol):
    rng = np.random.default_rng(7)
    circuit = build_circuit(2, 2)
    arguments = random_arguments(circuit, rng, batch=4)
    engine = FockEngine(8)

    def run():
        output = engine.run(circuit.program, arguments, 4)
        return output.x_means, output.trace

    eager = run()
    for compiled in (tf.function(run), tf.function(run, jit_compile=True)):
        for expected, actual in zip(eager, compiled()):
            np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=tol)


def test_unsupported_operation_is_a_clear_error():
    program = sf.Program(2)
    with program.context as q:
        ops.Dgate(0.3) | q[0]
        ops.MeasureX | q[1]
    with pytest.raises(
        UnsupportedOperationError, match=r"operation 1 \(MeasureX on modes \(1,\)\).*supported: BSgate"
    ):
        FockEngine(5).run(program, {}, 2)


def test_symbolic_argument_is_a_clear_error():
    program = sf.Program(1)
    with program.context as q:
        ops.Sgate(2 * program.params("r")) | q[0]
    with pytest.raises(UnsupportedOperationError, match="cannot evaluate argument 2\\*\\{r\\}"):
        FockEngine(5).run(program, {"r": tf.constant(0.1)}, 2)


def test_missing_or_misshapen_argument_is_a_clear_error():
    program = sf.Program(1)
    with program.context as q:
        ops.Dgate(program.params("d")) | q[0]
    with pytest.raises(KeyError, match="no argument given for free parameter 'd'"):
        FockEngine(5).run(program, {}, 2)
    with pytest.raises(ValueError, match=r"argument 'd' has shape \(2, 1\); allowed: scalar or \(batch,\)"):
        FockEngine(5).run(program, {"d": tf.zeros((2, 1))}, 2)


# the first two fuse their layers; the third (6^3 = 216 levels) runs gate by gate
@pytest.mark.parametrize("modes, cutoff, layers", [(1, 8, 3), (2, 7, 2), (3, 6, 2)])
def test_every_engine_agrees_with_sf_on_a_reuploading_circuit(
    modes, cutoff, layers, tol, candidate_engine, reference_engine
):
    rng = np.random.default_rng(7 * modes + cutoff)
    circuit = build_circuit(modes, layers, reupload=True)
    assert_engines_agree(circuit, cutoff, rng, tol, candidate_engine, reference_engine)


@pytest.mark.parametrize(
    "modes, layers, reupload", [(2, 4, True), (2, 4, False), (3, 2, True), (1, 3, False)]
)
def test_the_layers_of_a_circuit_are_found_as_one_repeated_block(modes, layers, reupload):
    from qgan.engines.fock_program import parse_program, repeated_block

    circuit = build_circuit(modes, layers, reupload=reupload)
    gates = parse_program(circuit.program)
    per_layer = (len(gates) - (0 if reupload else modes)) // layers
    start = 0 if reupload else modes  # without re-uploading, the latent displacements come first
    assert repeated_block(gates) == (start, per_layer, layers)


def test_a_single_layer_has_no_repeated_block_and_still_runs():
    from qgan.engines.fock_program import parse_program, repeated_block

    gates = parse_program(build_circuit(2, 1).program)
    assert repeated_block(gates) == (len(gates), 0, 0)


def test_a_repeated_block_mixing_fixed_and_per_sample_arguments_is_looped_exactly(tol):
    from qgan.engines.fock_program import parse_program, repeated_block

    program = sf.Program(2)
    latent = program.params("latent")
    with program.context as q:
        for angle in (0.3, latent, 0.7):  # the same block, with a fixed, a per-sample, a fixed argument
            ops.Dgate(0.2, 0.0) | q[0]
            ops.BSgate(angle, 0.1) | (q[0], q[1])
    arguments = {"latent": tf.constant([0.1, -0.4, 0.9])}
    assert repeated_block(parse_program(program)) == (0, 2, 3)
    fock = FockEngine(6).run(program, arguments, BATCH)
    reference = StrawberryFieldsEngine(6).run(program, arguments, BATCH)
    np.testing.assert_allclose(fock.x_means.numpy(), reference.x_means.numpy(), atol=tol)
    np.testing.assert_allclose(fock.trace.numpy(), reference.trace.numpy(), atol=tol)


def test_displacements_of_real_and_complex_amplitude_in_a_repeated_block_agree_with_sf(tol):
    """A displacement whose phase is 0 in every repetition runs as a real matrix; one that varies does not."""
    program = sf.Program(2)
    latent, phase = program.params("latent", "phase")
    with program.context as q:
        for real_phase, varying_phase in ((0.0, 0.0), (0.0, 0.0), (0.0, 0.6), (0.0, phase)):
            ops.Dgate(latent, real_phase) | q[0]
            ops.Dgate(-0.3, varying_phase) | q[1]
            ops.BSgate(0.7, 0.2) | (q[0], q[1])
    arguments = {
        "latent": tf.Variable([0.1, -0.5, 0.9]),
        "phase": tf.Variable(-1.1),
    }
    weights = tf.constant([[1.0, -2.0]] * BATCH)
    circuit = types.SimpleNamespace(program=program)  # all of a Circuit that value_and_gradients reads
    fock_output, fock_gradients = value_and_gradients(FockEngine(7), circuit, arguments, weights)
    sf_output, sf_gradients = value_and_gradients(StrawberryFieldsEngine(7), circuit, arguments, weights)
    np.testing.assert_allclose(fock_output.x_means.numpy(), sf_output.x_means.numpy(), atol=tol)
    np.testing.assert_allclose(fock_output.trace.numpy(), sf_output.trace.numpy(), atol=tol)
    np.testing.assert_allclose(fock_gradients, sf_gradients, rtol=1e-3, atol=1e-6)
    assert np.abs(fock_gradients).min() > 1e-3  # every argument moves the output


@pytest.mark.slow
def test_the_compiled_program_holds_one_layer_whatever_the_depth():
    def compiled_instructions(layers):
        circuit = build_circuit(2, layers)
        arguments = random_arguments(circuit, np.random.default_rng(0))
        engine, weights = FockEngine(4), tf.ones((BATCH, 2))

        def forward_backward():
            with tf.GradientTape() as tape:
                value, _ = objective(engine, circuit, arguments, weights)
            return tape.gradient(value, list(arguments.values()))

        step = tf.function(forward_backward, jit_compile=True, autograph=False)
        hlo = step.experimental_get_compiler_ir()(stage="hlo")
        return sum(" = " in line for line in hlo.splitlines())

    two, eight = compiled_instructions(2), compiled_instructions(8)
    # every layer runs in one loop over stacked arguments: each extra layer adds only the slicing
    # of its arguments (about 70 instructions), where a traced copy would add a layer's thousands
    assert two > 2000 and (eight - two) / 6 < 100, (two, eight)


def test_beamsplitters_on_reversed_and_distant_modes_agree_with_sf(tol):
    # applied by photon-number blocks, the gate's axes are moved last and back: any mode order
    program = sf.Program(3)
    theta, phi, shift = program.params("theta", "phi", "shift")
    with program.context as q:
        ops.Dgate(shift) | q[0]
        ops.Dgate(0.4, 0.3) | q[1]
        ops.Sgate(0.2) | q[2]
        ops.BSgate(theta, 0.5) | (q[2], q[0])
        ops.BSgate(0.8, phi) | (q[1], q[0])
        ops.BSgate(-0.6, 0.2) | (q[2], q[1])
    arguments = {
        "theta": tf.Variable(0.7),
        "phi": tf.Variable(-0.4),
        "shift": tf.Variable([0.5, -0.3, 0.1]),  # per sample
    }
    weights = tf.constant([0.3, -1.1, 0.7])
    results = []
    for engine in (FockEngine(7), StrawberryFieldsEngine(7)):
        with tf.GradientTape() as tape:
            output = engine.run(program, arguments, 3)
            value = tf.reduce_sum(output.x_means * weights) + tf.reduce_sum(output.trace)
        gradients = tape.gradient(value, list(arguments.values()))
        results.append((output, np.concatenate([np.ravel(gradient.numpy()) for gradient in gradients])))
    (fock_output, fock_gradients), (sf_output, sf_gradients) = results
    np.testing.assert_allclose(fock_output.x_means.numpy(), sf_output.x_means.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(fock_output.trace.numpy(), sf_output.trace.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(fock_gradients, sf_gradients, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize(
    "modes, cutoff, layers, reupload", [(2, 6, 3, True), (2, 5, 2, False), (3, 4, 2, True)]
)
def test_fused_and_gate_by_gate_layers_give_the_same_outputs_and_gradients(modes, cutoff, layers, reupload):
    circuit = build_circuit(modes, layers, reupload=reupload)
    rng = np.random.default_rng(modes + cutoff)
    arguments = random_arguments(circuit, rng, tf.float64)
    weights = tf.constant(rng.normal(size=modes), tf.float64)
    fused, fused_gradients = value_and_gradients(
        FockEngine(cutoff, tf.complex128, fuse=True), circuit, arguments, weights
    )
    gates, gate_gradients = value_and_gradients(
        FockEngine(cutoff, tf.complex128, fuse=False), circuit, arguments, weights
    )
    np.testing.assert_allclose(fused.x_means.numpy(), gates.x_means.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fused.trace.numpy(), gates.trace.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fused_gradients, gate_gradients, rtol=1e-10, atol=1e-12)
    assert np.abs(gate_gradients).max() > 0.1  # the comparison is not of zeros


def test_every_kind_of_shared_run_fuses_to_the_gate_by_gate_result():
    """Complex displacement and squeezing, phases between matrices on one mode, reversed and distant
    beamsplitters with and without a phase, a run of phases alone: fused as gate by gate."""
    program = sf.Program(3)
    names = ["latent", "rotation", "squeeze", "theta", "phi", "kerr"]
    latent, rotation, squeeze, theta, phi, kerr = program.params(*names)
    with program.context as q:
        for repetition in range(3):
            ops.Dgate(latent, 0.0) | q[1]  # per sample
            ops.Rgate(rotation) | q[0]
            ops.Dgate(0.3 - 0.1 * repetition, 0.4) | q[0]
            ops.Rgate(0.2 * repetition - 0.5) | q[0]  # between two matrices of mode 0
            ops.Sgate(squeeze, 0.5) | q[1]
            ops.Sgate(0.1 + 0.05 * repetition) | q[2]
            ops.BSgate(theta, phi) | (q[2], q[0])
            ops.Kgate(kerr) | q[1]
            ops.BSgate(0.4, 0.0) | (q[0], q[1])
            ops.Dgate(latent, 0.0) | q[2]  # per sample
            ops.Rgate(0.3) | q[0]  # a run of phases alone
            ops.Kgate(kerr) | q[2]
    rng = np.random.default_rng(3)
    arguments = {name: tf.Variable(rng.normal(0.0, 0.4), dtype=tf.float64) for name in names[1:]}
    arguments["latent"] = tf.Variable(rng.uniform(-0.6, 0.6, BATCH), dtype=tf.float64)
    weights = tf.constant(rng.normal(size=3), tf.float64)
    circuit = types.SimpleNamespace(program=program)
    fused, fused_gradients = value_and_gradients(FockEngine(4, tf.complex128), circuit, arguments, weights)
    gates, gate_gradients = value_and_gradients(
        FockEngine(4, tf.complex128, fuse=False), circuit, arguments, weights
    )
    assert FockEngine(4).fuses(3)
    np.testing.assert_allclose(fused.x_means.numpy(), gates.x_means.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fused.trace.numpy(), gates.trace.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fused_gradients, gate_gradients, rtol=1e-10, atol=1e-12)
    assert np.abs(gate_gradients).min() > 1e-3  # every argument moves the output


def test_a_fused_block_is_one_matrix_product_per_layer():
    circuit = build_circuit(2, 3, reupload=True)
    arguments = random_arguments(circuit, np.random.default_rng(0))

    def products(engine):
        ket = tf.function(lambda: engine.ket(circuit.program, arguments, BATCH), autograph=False)
        library = ket.get_concrete_function().graph.as_graph_def().library
        (body,) = [function for function in library.function if "while_body" in function.signature.name]
        return [node.op for node in body.node_def if node.op in ("BatchMatMulV2", "MatMul", "Einsum")]

    # per layer: the two latent displacements are per sample; the 12 shared gates are one product
    assert products(FockEngine(4, fuse=True)) == ["MatMul"]
    # two beamsplitters, two squeezings, and two real displacements (each on both parts at once)
    assert len(products(FockEngine(4, fuse=False))) == 6


@pytest.mark.parametrize(
    "modes, cutoff, fuse, expected",
    [
        (2, 8, None, True),
        (2, 11, None, True),
        (2, 12, None, False),
        (3, 5, None, True),
        (3, 6, None, False),
        (3, 6, True, True),
        (2, 8, False, False),
    ],
)
def test_fusing_is_automatic_up_to_the_dimension_limit(modes, cutoff, fuse, expected):
    from qgan.engines.fock_engine import FUSED_DIMENSION_LIMIT

    assert FUSED_DIMENSION_LIMIT == 128
    assert FockEngine(cutoff, fuse=fuse).fuses(modes) is expected


def test_fused_layers_above_the_limit_agree_with_sf(tol):
    rng = np.random.default_rng(11)
    circuit = build_circuit(3, 2, reupload=True)
    arguments = random_arguments(circuit, rng)
    weights = tf.constant(rng.normal(size=3), tf.float32)
    fock, fock_gradients = value_and_gradients(FockEngine(6, fuse=True), circuit, arguments, weights)
    reference, reference_gradients = value_and_gradients(
        StrawberryFieldsEngine(6), circuit, arguments, weights
    )
    np.testing.assert_allclose(fock.x_means.numpy(), reference.x_means.numpy(), atol=tol)
    np.testing.assert_allclose(
        fock_gradients, reference_gradients, rtol=1e-3, atol=1e-3 * np.abs(reference_gradients).max()
    )


def test_fuse_must_be_none_or_a_bool():
    with pytest.raises(ValueError, match="fuse must be None, True or False, got 'yes'"):
        FockEngine(6, fuse="yes")


def test_gates_of_one_kind_are_built_by_one_call_with_the_same_numbers():
    from qgan.engines.fock_apply import Gate

    rng = np.random.default_rng(5)
    repetitions, batch = 3, 4

    def shared():
        return tf.constant(rng.normal(size=repetitions), tf.float64)

    gates = [
        Gate("Dgate", (0,), ("latent_0", 0.0)),
        Gate("BSgate", (0, 1), ("t0", "p0")),
        Gate("Rgate", (0,), ("r0",)),
        Gate("Sgate", (1,), ("s1", 0.0)),
        Gate("Dgate", (1,), ("latent_1", 0.0)),
        Gate("BSgate", (0, 1), ("t1", "p1")),
        Gate("Dgate", (0,), ("d0", None)),
        Gate("Rgate", (1,), ("r1",)),
        Gate("Kgate", (0,), ("k0",)),
        Gate("Dgate", (1,), ("d1", 0.0)),
    ]
    values = [
        [tf.constant(rng.normal(size=(repetitions, batch)), tf.float64), tf.zeros(repetitions, tf.float64)],
        [shared(), shared()],
        [shared()],
        [shared(), tf.zeros(repetitions, tf.float64)],
        [tf.constant(rng.normal(size=(repetitions, batch)), tf.float64), tf.zeros(repetitions, tf.float64)],
        [shared(), shared()],
        [shared(), shared()],
        [shared()],
        [shared()],
        [shared(), tf.zeros(repetitions, tf.float64)],
    ]
    engine = FockEngine(5, tf.complex128)
    alone = [
        engine._operator(gate, arguments, per_sample=arguments[0].shape.rank == 2)
        for gate, arguments in zip(gates, values)
    ]
    calls = []
    build = engine._operator

    def counted(gate, arguments, dense=False, per_sample=False):
        calls.append(gate.kind)
        return build(gate, arguments, dense, per_sample)

    engine._operator = counted
    together = engine._operators(gates, values)
    for one, other in zip(alone, together):
        assert type(one) is type(other)
        for one_part, other_part in zip(tf.nest.flatten(one), tf.nest.flatten(other)):
            np.testing.assert_array_equal(one_part.numpy(), other_part.numpy())
    # one call per kind in order of first use; displacements split by shape (the per-sample latent
    # ones) and by phase (a complex one); the two beamsplitters and the two rotations share a call
    assert calls == ["Dgate", "BSgate", "Rgate", "Sgate", "Dgate", "Kgate", "Dgate"]


def table_arguments(circuit, rng, batch=BATCH):
    """Each group's (layers, size) and the latent (encodings, modes, batch) table as variables."""
    tables = {
        group: tf.Variable(rng.normal(0.0, 0.3, (circuit.layers, size)), dtype=tf.float32)
        for group, size in circuit.group_sizes.items()
    }
    latent = tf.Variable(rng.uniform(-0.8, 0.8, (circuit.encodings, circuit.modes, batch)), dtype=tf.float32)
    return tables, latent


def named_arguments(circuit, tables, latent, entries):
    """The free-parameter dict, each argument a TableEntry or (entries False) the sliced tensor."""
    from qgan.engines import TableEntry

    def argument(table, row, column):
        return TableEntry(table, row, column) if entries else table[row, column]

    arguments = {}
    for group, table in tables.items():
        for layer in range(circuit.layers):
            for index in range(circuit.group_sizes[group]):
                arguments[circuit.parameter_name(group, layer, index)] = argument(table, layer, index)
    for encoding in range(circuit.encodings):
        for mode in range(circuit.modes):
            arguments[circuit.latent_name(encoding, mode)] = argument(latent, encoding, mode)
    return arguments


@pytest.mark.parametrize("engine", [FockEngine(5), StrawberryFieldsEngine(5)], ids=["fock", "sf"])
def test_arguments_given_as_table_entries_give_the_same_outputs_and_gradients(engine):
    circuit = build_circuit(2, 3, reupload=True)
    tables, latent = table_arguments(circuit, np.random.default_rng(21))
    variables = list(tables.values()) + [latent]
    results = []
    for entries in (False, True):
        with tf.GradientTape() as tape:
            output = engine.run(circuit.program, named_arguments(circuit, tables, latent, entries), BATCH)
            value = tf.reduce_sum(output.x_means * [1.0, -0.5]) + tf.reduce_sum(output.trace)
        gradients = tape.gradient(value, variables)
        results.append((output.x_means.numpy(), [gradient.numpy() for gradient in gradients]))
    (sliced, sliced_gradients), (entries, entry_gradients) = results
    np.testing.assert_array_equal(entries, sliced)
    for entry_gradient, sliced_gradient in zip(entry_gradients, sliced_gradients):
        np.testing.assert_allclose(entry_gradient, sliced_gradient, rtol=1e-6, atol=1e-7)
    assert min(np.abs(gradient).max() for gradient in sliced_gradients) > 1e-3


def test_a_table_entry_of_the_wrong_rank_is_a_clear_error():
    from qgan.engines import TableEntry

    program = sf.Program(1)
    with program.context as q:
        ops.Dgate(program.params("d0")) | q[0]  # before the repeated block: traced alone
        ops.Rgate(program.params("a0")) | q[0]
        ops.Rgate(program.params("a1")) | q[0]  # a0 and a1: one loop, their rows as one slice
    table = tf.zeros((2, 1, 3, 4))
    good = {name: TableEntry(tf.zeros((2, 1)), row, 0) for row, name in enumerate(["a0", "a1"])}
    good["d0"] = TableEntry(tf.zeros((1, 1, 3)), 0, 0)
    assert FockEngine(4).run(program, good, 3).trace.shape == (3,)
    message = r"argument '{}' has shape \(3, 4\); allowed: scalar or \(batch,\)"
    with pytest.raises(ValueError, match=message.format("d0")):
        FockEngine(4).run(program, {**good, "d0": TableEntry(table, 0, 0)}, 3)
    wrong = {name: TableEntry(table, row, 0) for row, name in enumerate(["a0", "a1"])}
    with pytest.raises(ValueError, match=message.format("a0")):
        FockEngine(4).run(program, {**good, **wrong}, 3)
