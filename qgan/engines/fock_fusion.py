"""Runs of gates that every sample shares, multiplied into one state-space matrix per repetition."""

from __future__ import annotations

import tensorflow as tf

from qgan.engines.fock_apply import DIAGONAL_KINDS, Gate, apply_operator


def fuse_shared_runs(
    gates: list, operators: list, shared: list, repetitions: int, modes: int, cutoff: int, dtype: tf.DType
) -> tuple[list, list]:
    """Replaces each run of two or more consecutive shared gates by one "fused" gate.

    A fused gate's operator is (repetitions, cutoff^modes, cutoff^modes): ψ' = ψ R for each sample's
    ψ flattened to a row (apply_operator multiplies it in). Gates with per-sample arguments, and
    shared gates that stand alone, are kept as they are.

    Args:
        gates: the repeated block's gates, in order.
        operators: each gate's operator for every repetition (leading axis `repetitions`).
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

    Consecutive single-mode gates on one mode are first multiplied into one cutoff × cutoff matrix;
    the beamsplitters and those products are then applied to every basis state of every repetition
    at once, which costs about as much as running cutoff^modes samples through the run.
    """
    dimension = cutoff**modes
    levels = (cutoff,) * modes
    # the repetition is the batch axis and the basis state an extra leading mode, so each
    # repetition's gates act on its own basis states
    basis = tf.reshape(tf.eye(dimension, dtype=dtype), (1, dimension) + levels)
    columns = tf.tile(basis, (repetitions, 1) + (1,) * modes)
    pending = {}  # mode → its single-mode gates not yet applied, as _product gives them

    def flush(columns, mode):
        if mode not in pending:
            return columns
        diagonal, value = pending.pop(mode)
        # a product of diagonal gates is applied as phases, any other as a complex matrix
        single = Gate("Rgate" if diagonal else "matrix", (mode + 1,), ())
        return apply_operator(single, value, columns, modes + 1)

    for gate, operator in run:
        if len(gate.modes) == 1:
            (mode,) = gate.modes
            pending[mode] = _product(gate, operator, pending.get(mode), dtype)
            continue
        for mode in gate.modes:
            columns = flush(columns, mode)
        shifted = Gate(gate.kind, tuple(mode + 1 for mode in gate.modes), gate.parameters)
        columns = apply_operator(shifted, operator, columns, modes + 1)
    for mode in sorted(pending):
        columns = flush(columns, mode)
    return tf.reshape(columns, (repetitions, dimension, dimension))


def _product(gate: Gate, operator: tf.Tensor, earlier, dtype: tf.DType) -> tuple:
    """A single-mode gate applied after `earlier` (None, or a pair as returned here).

    Returns:
        (diagonal, value): the phases [..., c] of a product of diagonal gates (rotation, Kerr), or
        the complex matrix [..., c, c] of any other product. A diagonal factor scales rows or
        columns instead of entering a matrix product.
    """
    diagonal = gate.kind in DIAGONAL_KINDS
    value = operator if diagonal else tf.cast(operator, dtype)
    if earlier is None:
        return diagonal, value
    earlier_diagonal, earlier_value = earlier
    if diagonal and earlier_diagonal:
        return True, value * earlier_value
    if diagonal:
        return False, value[..., :, None] * earlier_value
    if earlier_diagonal:
        return False, value * earlier_value[..., None, :]
    return False, tf.linalg.matmul(value, earlier_value)
