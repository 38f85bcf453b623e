"""Runs of gates that every sample shares, multiplied into one state-space matrix per repetition."""

from __future__ import annotations

import string

import tensorflow as tf

from qgan.engines.fock_apply import DIAGONAL_KINDS, Gate


def fused_positions(shared: list) -> set:
    """Positions of the gates fuse_shared_runs fuses: those in runs of two or more shared gates."""
    positions, run = set(), []
    for position, is_shared in enumerate(shared + [False]):
        if is_shared:
            run.append(position)
            continue
        if len(run) > 1:
            positions.update(run)
        run = []
    return positions


def split_beamsplitters(gates: list, values: list, fused: set) -> tuple[list, list, set]:
    """Writes each fused beamsplitter as B(θ, φ) = R_a(−φ) B(θ, 0) R_a(φ), a real matrix between rotations.

    The rotations of its first mode a are phases, which run_matrix multiplies in without a
    product, and B(θ, 0) is real, so the product it enters is real.

    Args:
        gates: the repeated block's gates.
        values: each gate's stacked arguments.
        fused: positions of the gates that are fused (fused_positions).

    Returns:
        The gates, their arguments and the fused positions, with each fused beamsplitter replaced.
    """
    new_gates, new_values, new_fused = [], [], set()
    for position, (gate, arguments) in enumerate(zip(gates, values)):
        if position not in fused or gate.kind != "BSgate":
            if position in fused:
                new_fused.add(len(new_gates))
            new_gates.append(gate)
            new_values.append(arguments)
            continue
        theta, phi = arguments
        angle = gate.parameters[1]
        negated = -angle if isinstance(angle, float) else None
        first = gate.modes[:1]
        new_fused.update(range(len(new_gates), len(new_gates) + 3))
        new_gates += [
            Gate("Rgate", first, (angle,)),
            Gate("BSgate", gate.modes, (gate.parameters[0], 0.0)),
            Gate("Rgate", first, (negated,)),
        ]
        new_values += [[phi], [theta, tf.zeros_like(phi)], [-phi]]
    return new_gates, new_values, new_fused


def fuse_shared_runs(
    gates: list, operators: list, shared: list, repetitions: int, modes: int, cutoff: int, dtype: tf.DType
) -> tuple[list, list]:
    """Replaces each run of two or more consecutive shared gates by one "fused" gate.

    A fused gate's operator is (repetitions, cutoff^modes, cutoff^modes): ψ' = ψ R for each sample's
    ψ flattened to a row (apply_operator multiplies it in). Gates with per-sample arguments, and
    shared gates that stand alone, are kept as they are.

    Args:
        gates: the repeated block's gates, in order.
        operators: each gate's operator for every repetition (leading axis `repetitions`); a fused
            beamsplitter's is its dense matrix [..., c, c, c, c], real without a phase
            (split_beamsplitters).
        shared: for each gate, whether its arguments are the same for every sample.
        repetitions: how often the block repeats.
        modes: number of modes of the state.
        cutoff: Fock levels kept per mode.
        dtype: complex dtype of the state.

    Returns:
        The new gate list and operator list, in the same order.
    """
    fused_gates, fused_operators, run = [], [], []
    for gate, operator, is_shared in zip(gates + [None], operators + [None], shared + [False]):
        if is_shared:
            run.append((gate, operator))
            continue
        if len(run) == 1:
            fused_gates.append(run[0][0])
            fused_operators.append(run[0][1])
        elif run:
            fused_gates.append(Gate("fused", tuple(range(modes)), ()))
            fused_operators.append(run_matrix(run, repetitions, modes, cutoff, dtype))
        run = []
        if gate is not None:
            fused_gates.append(gate)
            fused_operators.append(operator)
    return fused_gates, fused_operators


def run_matrix(run: list, repetitions: int, modes: int, cutoff: int, dtype: tf.DType) -> tf.Tensor:
    """The matrix R, (repetitions, cutoff^modes, cutoff^modes), of a run of (gate, operator) pairs.

    Single-mode gates are gathered per mode until a beamsplitter, and all modes' gathered gates
    then become one Kronecker product; diagonal gates (rotation, Kerr) stay phases on either side
    of it. The run is thus a few dense state-space matrices with phases between them, multiplied
    as batched products of size cutoff^modes, in real arithmetic where a matrix is real
    (squeezing and displacement without a phase): a handful of large products, which XLA's CPU
    backend runs far faster than many small ones.
    """
    dimension = cutoff**modes
    real_dtype = dtype.real_dtype
    factors = []  # in order of application: ("phases", [r, d] complex) or ("matrix", [r, d, d])
    pending = {}  # mode → [left phases, matrix, right phases] of its gathered single-mode gates

    def flush():
        if pending:
            factors.extend(_kronecker_factors(pending, modes, cutoff))
            pending.clear()

    for gate, operator in run:
        if len(gate.modes) == 1:
            (mode,) = gate.modes
            _gather(pending.setdefault(mode, [None, None, None]), gate, operator)
            continue
        flush()
        factors.append(("matrix", _two_mode_matrix(operator, gate.modes, modes, cutoff)))
    flush()

    real, imaginary = _transposed_product(factors, repetitions, dimension, real_dtype)
    return tf.complex(real, imaginary)


def _gather(product: list, gate: Gate, operator: tf.Tensor) -> None:
    """Applies a single-mode gate after the gathered product [left phases, matrix, right phases]."""
    left, matrix, right = product
    if gate.kind in DIAGONAL_KINDS:
        # phases before any matrix are applied first: to the right of the product
        place = 0 if matrix is not None else 2
        earlier = product[place]
        product[place] = operator if earlier is None else operator * earlier
        return
    if gate.kind == "Sgate" and gate.parameters[1] == 0.0:
        operator = tf.math.real(operator)  # squeezing along x is a real matrix
    if left is not None:
        # the phases before this matrix scale its columns, which makes it complex
        operator = tf.cast(operator, left.dtype) * left[..., None, :]
    if matrix is not None:
        if operator.dtype != matrix.dtype:
            operator, matrix = _as_complex(operator), _as_complex(matrix)
        operator = tf.linalg.matmul(operator, matrix)
    product[:] = [None, operator, right]


def _as_complex(matrix: tf.Tensor) -> tf.Tensor:
    if matrix.dtype.is_complex:
        return matrix
    return tf.complex(matrix, tf.zeros_like(matrix))


def _kronecker_factors(pending: dict, modes: int, cutoff: int) -> list:
    """The gathered single-mode gates of all modes as full-space factors: phases, matrix, phases."""
    factors = []
    right = _kronecker_phases([pending.get(mode, [None] * 3)[2] for mode in range(modes)])
    if right is not None:
        factors.append(("phases", _materialized(right)))
    matrices = [pending.get(mode, [None] * 3)[1] for mode in range(modes)]
    if any(matrix is not None for matrix in matrices):
        if any(matrix is not None and matrix.dtype.is_complex for matrix in matrices):
            matrices = [None if matrix is None else _as_complex(matrix) for matrix in matrices]
        factors.append(("matrix", _kronecker_matrix(matrices, cutoff)))
    left = _kronecker_phases([pending.get(mode, [None] * 3)[0] for mode in range(modes)])
    if left is not None:
        factors.append(("phases", _materialized(left)))
    return factors


def _kronecker_phases(phases: list):
    """The full-space phases [r, d] of per-mode phases [r, c] (None: no phase), or None if none."""
    present = [value for value in phases if value is not None]
    if not present:
        return None
    ones = tf.ones_like(present[0])
    product = None
    for value in phases:
        value = ones if value is None else value
        if product is not None:
            product = product[..., :, None] * value[..., None, :]
            value = tf.reshape(product, tf.concat([tf.shape(product)[:-2], [-1]], 0))
        product = value
    return product


def _kronecker_matrix(matrices: list, cutoff: int) -> tf.Tensor:
    """The Kronecker product [r, d, d] of per-mode matrices [r, c, c] (None: the identity)."""
    present = next(matrix for matrix in matrices if matrix is not None)
    identity = tf.broadcast_to(tf.eye(cutoff, dtype=present.dtype), tf.shape(present))
    product = None
    for matrix in matrices:
        matrix = identity if matrix is None else matrix
        if product is None:
            product = matrix
            continue
        # [r, a, b] ⊗ [r, c, e] → [r, a, c, b, e]
        product = product[:, :, None, :, None] * matrix[:, None, :, None, :]
        size = product.shape[1] * product.shape[2]
        product = tf.reshape(product, (-1, size, size))
    return product


def _two_mode_matrix(matrix: tf.Tensor, gate_modes: tuple, modes: int, cutoff: int) -> tf.Tensor:
    """A two-mode gate's matrix [r, c, c, c, c] ([m_a, m_b, n_a, n_b]) on the full space [r, d, d]."""
    letters = string.ascii_lowercase
    rows, columns = letters[:modes], letters[modes : 2 * modes]
    first, second = gate_modes
    gate_term = f"z{rows[first]}{rows[second]}{columns[first]}{columns[second]}"
    others = [mode for mode in range(modes) if mode not in gate_modes]
    terms, operands = [gate_term], [matrix]
    for mode in others:
        # the identity on every other mode: its row and column letter are the same
        terms.append(f"{rows[mode]}{columns[mode]}")
        operands.append(tf.eye(cutoff, dtype=matrix.dtype))
    full = tf.einsum(f"{','.join(terms)}->z{rows}{columns}", *operands)
    dimension = cutoff**modes
    return tf.reshape(full, (-1, dimension, dimension))


def _transposed_product(factors: list, repetitions: int, dimension: int, real_dtype: tf.DType) -> tuple:
    """R = (F_k ⋯ F_1)ᵀ = F_1ᵀ ⋯ F_kᵀ of the factors in order of application, as real and imaginary parts.

    ψ' = ψ R for rows is the transpose of the product acting on columns. R is real until a phase
    scales its columns, and from then on its parts are stacked as [r, 2, d, d], so that a real
    matrix factor multiplies both parts in one product.
    """
    matrix = None  # R: [r, d, d] while real, then its parts [r, 2, d, d]
    phases = None  # phases since the last matrix factor: they scale R's columns before the next one
    for kind, value in factors:
        if kind == "phases":
            phases = value if phases is None else value * phases
            continue
        if matrix is None:
            # the first matrix factor, transposed
            matrix = tf.linalg.matrix_transpose(value)
            if matrix.dtype.is_complex:
                matrix = tf.stack([tf.math.real(matrix), tf.math.imag(matrix)], axis=-3)
            # phases before it scale its columns, which are R's rows
            if phases is not None:
                matrix = _scale(_as_parts(matrix), phases, rows=True)
        else:
            if phases is not None:
                matrix = _scale(_as_parts(matrix), phases, rows=False)
            matrix = _times_transposed(matrix, value, dimension)
        phases = None
    if matrix is None:  # only phases: a diagonal matrix
        matrix = tf.stack(
            [tf.linalg.diag(tf.math.real(phases)), tf.linalg.diag(tf.math.imag(phases))], axis=-3
        )
    elif phases is not None:
        matrix = _scale(_as_parts(matrix), phases, rows=False)
    parts = tf.broadcast_to(tf.cast(_as_parts(matrix), real_dtype), (repetitions, 2, dimension, dimension))
    return parts[:, 0], parts[:, 1]


def _as_parts(matrix: tf.Tensor) -> tf.Tensor:
    """The stacked parts [r, 2, d, d] of R, given as a real [r, d, d] or already as parts."""
    if matrix.shape.rank == 4:
        return matrix
    return tf.stack([matrix, tf.zeros_like(matrix)], axis=-3)


def _times_transposed(matrix: tf.Tensor, factor: tf.Tensor, dimension: int) -> tf.Tensor:
    """R · Aᵀ, R real [r, d, d] or parts [r, 2, d, d]; both parts of R in one product per part of A."""
    if matrix.shape.rank == 3:
        if not factor.dtype.is_complex:
            return tf.linalg.matmul(matrix, factor, transpose_b=True)
        matrix = _as_parts(matrix)
    rows = tf.reshape(matrix, (-1, 2 * dimension, dimension))  # both parts' rows
    if not factor.dtype.is_complex:
        return tf.reshape(tf.linalg.matmul(rows, factor, transpose_b=True), (-1, 2, dimension, dimension))
    real = tf.reshape(
        tf.linalg.matmul(rows, tf.math.real(factor), transpose_b=True), (-1, 2, dimension, dimension)
    )
    imaginary = tf.reshape(
        tf.linalg.matmul(rows, tf.math.imag(factor), transpose_b=True), (-1, 2, dimension, dimension)
    )
    return tf.stack(
        [real[:, 0] - imaginary[:, 1], imaginary[:, 0] + real[:, 1]],
        axis=1,
    )


def _scale(parts: tf.Tensor, phases: tf.Tensor, rows: bool) -> tf.Tensor:
    """diag(phases) · R (rows) or R · diag(phases) (columns) on R's parts [r, 2, d, d]; phases [r, d]."""
    axis = -1 if rows else -2
    cosine = tf.expand_dims(tf.math.real(phases), axis)
    sine = tf.expand_dims(tf.math.imag(phases), axis)
    real, imaginary = parts[:, 0], parts[:, 1]
    return tf.stack([real * cosine - imaginary * sine, real * sine + imaginary * cosine], axis=1)


def _materialized(phases: tf.Tensor) -> tf.Tensor:
    """The same phases [r, d], passed through a product with the identity.

    XLA fuses elementwise producers into their consumers, so phases left as the cosines and sines
    that make them are evaluated again for every entry of each [r, d, d] matrix they scale, and of
    its gradient: at cutoff 8, 4 layers and batch 128 that made the forward+backward 5.1 ms
    instead of 3.4 ms. A product is never fused into its consumers, so its result is computed once.
    """
    parts = tf.stack([tf.math.real(phases), tf.math.imag(phases)], axis=-2)  # [r, 2, d]
    parts = tf.linalg.matmul(parts, tf.eye(parts.shape[-1], dtype=parts.dtype))
    return tf.complex(parts[..., 0, :], parts[..., 1, :])
