"""The compiled engine: a Strawberry Fields program run as one batched pure-state TensorFlow graph."""

from __future__ import annotations

import string

import numpy as np
import strawberryfields as sf
import tensorflow as tf

from qgan.engines import fock_beamsplitter, fock_gates
from qgan.engines.base import Engine, EngineOutput, TableEntry, argument_tensor
from qgan.engines.fock_apply import (
    DIAGONAL_KINDS,
    Gate,
    SampleDisplacement,
    apply_operator,
    apply_to_parts,
    from_parts,
    matvec,
    real_product_matrix,
    to_parts,
)
from qgan.engines.fock_fusion import fuse_shared_runs, fused_positions, split_beamsplitters
from qgan.engines.fock_program import parse_program, repeated_block

# Automatic fusing of a layer's shared gates stops at this state dimension, cutoff ** modes (see FockEngine).
FUSED_DIMENSION_LIMIT = 128


class FockEngine(Engine):
    """Batched pure-state simulation in the truncated Fock space, differentiable and XLA-compilable.

    The state is one tensor of shape (batch, cutoff, …, cutoff). Gate matrices come from
    fock_gates and fock_beamsplitter; a gate whose arguments are scalars is built once for the
    batch, one whose arguments are (batch,) tensors is built per sample in a single batched op.
    A beamsplitter conserves the total photon number of its two modes, so it is applied block
    by block (2·cutoff − 1 blocks of at most cutoff² entries against cutoff⁴ for its dense
    matrix). A displacement whose phase is the number 0 is a real matrix, applied to the real
    and imaginary parts of the state. When the program repeats a block of gates (the layers of a circuit), all
    its copies run as one loop, so the graph, and its compile time, does not grow with depth:
    their gate matrices are built for every repetition at once, batched over the repetitions,
    and the loop only applies them. Where the state is small (see `fuses`), each run of the
    block's gates that every sample shares is first multiplied into one state-space matrix per
    repetition, so a layer of a two-mode circuit is its per-sample latent displacements and one
    matrix product. Gates before such a block are traced one by one, and there
    modes stay separate vectors until the first two-mode gate (a displacement of the vacuum is
    one coherent-state vector).

    Args:
        cutoff: Fock levels kept per mode.
        dtype: tf.complex64 (default) or tf.complex128; outputs are float32 or float64 to match.
        fuse: in the repeated block, multiply each run of consecutive gates that every sample shares
            into one (cutoff^modes)² matrix per repetition, applied as one product (the latent
            displacements, per sample, stay gates of their own). None (default): fuse when
            cutoff^modes ≤ FUSED_DIMENSION_LIMIT, where the product costs less than the gates.
    """

    name = "fock"
    supports_graph = True

    def __init__(self, cutoff: int, dtype: tf.DType = tf.complex64, fuse: bool | None = None):
        super().__init__(cutoff)
        if dtype not in (tf.complex64, tf.complex128):
            raise ValueError(f"dtype must be tf.complex64 or tf.complex128, got {dtype}")
        if fuse not in (None, True, False):
            raise ValueError(f"fuse must be None, True or False, got {fuse!r}")
        self.fuse = fuse
        self.dtype = dtype
        self.real_dtype = tf.float64 if dtype == tf.complex128 else tf.float32
        self._parsed = {}

    def fuses(self, modes: int) -> bool:
        """Whether a repeated block's shared gates are fused for a program on `modes` modes.

        Measured on 2 cores, XLA, 4 layers: the forward+backward at batch 128 fused is 1.5× faster
        at cutoff^modes = 64 and the default training step (100) 1.4× faster; about as fast at
        144–216, and 2× slower at 343.
        """
        if self.fuse is not None:
            return self.fuse
        return self.cutoff**modes <= FUSED_DIMENSION_LIMIT

    def _parse(self, program: sf.Program) -> tuple[list[Gate], tuple[int, int, int]]:
        """The program's gates and its repeated block, parsed once per program."""
        key = id(program)
        if key not in self._parsed or self._parsed[key][0] is not program:
            gates = parse_program(program)
            self._parsed[key] = (program, gates, repeated_block(gates))
        return self._parsed[key][1:]

    def _value(self, parameter, arguments: dict) -> tf.Tensor:
        if isinstance(parameter, str):
            if parameter not in arguments:
                raise KeyError(f"no argument given for free parameter {parameter!r}")
            return self._value_of(parameter, argument_tensor(arguments[parameter]))
        return tf.constant(parameter, self.real_dtype)

    def _value_of(self, parameter: str, value, rank: int = 0) -> tf.Tensor:
        """An argument (with `rank` leading axes over repetitions) cast to the real dtype and checked."""
        value = tf.cast(value, self.real_dtype)
        if value.shape.rank - rank not in (0, 1):
            shape = value.shape[rank:]
            raise ValueError(f"argument {parameter!r} has shape {shape}; allowed: scalar or (batch,)")
        return value

    def run(self, program: sf.Program, arguments: dict, batch_size: int) -> EngineOutput:
        state = self.ket(program, arguments, batch_size)
        modes = program.num_subsystems
        return EngineOutput(x_means=_x_expectations(state, modes, self.real_dtype), trace=_trace(state))

    def ket(self, program: sf.Program, arguments: dict, batch_size: int) -> tf.Tensor:
        gates, (start, period, repetitions) = self._parse(program)
        # every copy of a repeated block runs in one loop; the gates before it are traced one by one
        looped = repetitions if repetitions >= 2 else 0
        unrolled = gates[:start] if looped else gates
        modes = program.num_subsystems
        # per-mode vectors while the state is a product; None stands for the vacuum
        vectors: list = [None] * modes
        state = None  # (batch,) + (cutoff,) * modes once modes are entangled
        for gate in unrolled:
            values = [self._value(parameter, arguments) for parameter in gate.parameters]
            state = self._apply(gate, values, state, vectors, batch_size, modes)
        if state is None:
            state = self._product_state(vectors, batch_size)
        if not looped:
            return state

        # each position of the block with its parameters over the repetitions
        repeated = [
            [
                [
                    gates[start + repetition * period + position].parameters[index]
                    for repetition in range(looped)
                ]
                for index in range(len(gate.parameters))
            ]
            for position, gate in enumerate(gates[start : start + period])
        ]
        # the block's gates, keeping a number only where every repetition has that same number
        template = [
            Gate(gate.kind, gate.modes, tuple(_common_number(parameters) for parameters in by_index))
            for gate, by_index in zip(gates[start : start + period], repeated)
        ]
        stacked = [
            [self._stacked(parameters, arguments, batch_size) for parameters in by_index]
            for by_index in repeated
        ]

        # every repetition's gate matrices, built at once outside the loop
        shared = [all(value.shape.rank == 1 for value in values) for values in stacked]
        fused = fused_positions(shared) if self.fuses(modes) else set()
        if fused:
            template, stacked, fused = split_beamsplitters(template, stacked, fused)
            shared = [all(value.shape.rank == 1 for value in values) for values in stacked]
        operators = self._operators(
            template, stacked, [position in fused for position in range(len(template))]
        )
        if fused:
            template, operators = fuse_shared_runs(
                template, operators, shared, looped, modes, self.cutoff, self.dtype
            )

        if all(
            gate.kind == "fused" or isinstance(operator, SampleDisplacement) or operator.dtype.is_floating
            for gate, operator in zip(template, operators)
        ):
            # only fused products and real matrices: the loop carries the real and imaginary parts
            operators = [
                real_product_matrix(operator) if gate.kind == "fused" else _without_tape(operator)
                for gate, operator in zip(template, operators)
            ]
            apply, state = apply_to_parts, to_parts(state)
        else:
            operators = [_matrix_of(operator) for operator in operators]
            apply = apply_operator

        def repeat(state, gate_operators):
            for gate, operator in zip(template, gate_operators):
                state = apply(gate, operator, state, modes)
            return state

        # one traced copy of the repeated block, run once per repetition
        state = tf.foldl(repeat, operators, initializer=state)
        return from_parts(state) if apply is apply_to_parts else state

    def _operators(self, gates: list[Gate], values: list, fused: list | None = None) -> list:
        """The operator of each gate, those of one kind and argument shapes built by one call.

        A layer holds several gates of each kind (two beamsplitters, a rotation per mode and
        interferometer, …); stacking their arguments builds them together, which gives the
        compiled step fewer, larger ops and XLA less to compile (the default training step
        compiled in 10.2–10.9 s instead of 12.2–14.0 s), with the same numbers.

        Args:
            gates: the gates, numbers kept only where every repetition shares them.
            values: each gate's arguments, each (repetitions,) or (repetitions, batch).
            fused: for each gate, whether it will be fused (fuse_shared_runs): a fused beamsplitter
                is built as its dense matrix, not by blocks.

        Returns:
            The operators, in the order of `gates`.
        """
        fused = fused or [False] * len(gates)
        groups = {}
        for position, (gate, arguments) in enumerate(zip(gates, values)):
            # the kind decides the builder, the shapes whether the arguments stack
            key = (
                gate.kind,
                _is_real_displacement(gate),
                fused[position] and gate.kind == "BSgate",
                tuple(tuple(argument.shape) for argument in arguments),
            )
            groups.setdefault(key, []).append(position)
        operators = [None] * len(gates)
        for positions in groups.values():
            first = positions[0]
            dense = fused[first] and gates[first].kind == "BSgate"
            per_sample = any(argument.shape.rank == 2 for argument in values[first])
            if len(positions) == 1:
                operators[first] = self._operator(gates[first], values[first], dense, per_sample)
                continue
            together = [
                tf.stack([values[position][index] for position in positions])
                for index in range(len(values[first]))
            ]
            built = self._operator(gates[first], together, dense, per_sample)
            if isinstance(built, SampleDisplacement):
                unstacked = [SampleDisplacement(*parts) for parts in zip(*map(tf.unstack, built))]
            else:
                unstacked = tf.unstack(built)
            for position, operator in zip(positions, unstacked):
                operators[position] = operator
        return operators

    def _operator(self, gate: Gate, values: list, dense: bool = False, per_sample: bool = False):
        """The gate as apply_operator takes it (matrix, diagonal, blocks), for arguments of any shape.

        With `dense`, a beamsplitter without phase is its real matrix [..., c, c, c, c] (as
        fuse_shared_runs takes it).
        With `per_sample` (arguments per repetition and sample, in the repeated block), a real
        displacement is a SampleDisplacement, whose gradient the loop takes to its amplitudes.
        """
        cutoff = self.cutoff
        rank = max(value.shape.rank for value in values)
        # (repetitions,) beside (repetitions, batch): a trailing axis makes them broadcast
        values = [value[(...,) + (None,) * (rank - value.shape.rank)] for value in values]
        if gate.kind == "BSgate" and dense:
            # fused beamsplitters come without phase (fock_fusion.split_beamsplitters)
            return fock_beamsplitter.real_beamsplitter_matrix(values[0], cutoff, self.real_dtype)
        if gate.kind == "BSgate":
            return fock_beamsplitter.beamsplitter_blocks(*values, cutoff, self.dtype)
        if gate.kind in DIAGONAL_KINDS:
            return fock_gates.number_phases(values[0], cutoff, 1 if gate.kind == "Rgate" else 2, self.dtype)
        if _is_real_displacement(gate) and per_sample:
            amplitude = tf.cast(values[0], self.real_dtype)
            return SampleDisplacement(
                amplitude, *fock_gates.real_displacement_and_slope(amplitude, cutoff, self.real_dtype)
            )
        if _is_real_displacement(gate):
            return fock_gates.real_displacement_matrix(values[0], cutoff, self.real_dtype)
        if gate.kind == "Dgate":
            return fock_gates.displacement_matrix(*values, cutoff, self.dtype)
        return fock_gates.squeezing_matrix(*values, cutoff, self.dtype)

    def _stacked(self, parameters: list, arguments: dict, batch_size) -> tf.Tensor:
        """One parameter of the repeated block at every repetition: (repetitions,) or (repetitions, batch)."""
        entries = [arguments.get(name) if isinstance(name, str) else None for name in parameters]
        first = entries[0]
        if isinstance(first, TableEntry) and all(
            isinstance(entry, TableEntry)
            and entry.table is first.table
            and (entry.row, entry.column) == (first.row + offset, first.column)
            for offset, entry in enumerate(entries)
        ):
            # successive rows of one column: one slice of the table, not a stack of one per row
            return self._value_of(
                parameters[0], first.table[first.row : first.row + len(entries), first.column], rank=1
            )
        values = [self._value(parameter, arguments) for parameter in parameters]
        if len({value.shape.rank for value in values}) > 1:
            values = [tf.broadcast_to(value, tf.reshape(batch_size, (1,))) for value in values]
        return tf.stack(values)

    def _apply(self, gate: Gate, values: list, state, vectors, batch_size, modes: int):
        """Applies one gate to the state, or to the per-mode vectors (updated in place) while it is None."""
        if gate.kind == "BSgate" and state is None:
            state = self._product_state(vectors, batch_size)
        if state is not None:
            return apply_operator(gate, self._operator(gate, values), state, modes)
        (mode,) = gate.modes
        if vectors[mode] is None:  # the vacuum: rotation and Kerr give it phase 1
            if gate.kind == "Dgate":
                vectors[mode] = fock_gates.coherent_state(*values, self.cutoff, self.dtype)
            elif gate.kind == "Sgate":
                vectors[mode] = fock_gates.squeezed_vacuum(*values, self.cutoff, self.dtype)
            return None
        operator = self._operator(gate, values)
        if gate.kind in DIAGONAL_KINDS:
            vectors[mode] = vectors[mode] * operator
        else:
            vectors[mode] = matvec(tf.cast(operator, self.dtype), vectors[mode])
        return None

    def _product_state(self, vectors: list, batch_size) -> tf.Tensor:
        """The (batch, cutoff, …) tensor product of the per-mode vectors."""
        vacuum = tf.one_hot(0, self.cutoff, dtype=self.dtype)
        letters = string.ascii_lowercase
        state = None
        for mode, vector in enumerate(vectors):
            vector = vacuum if vector is None else vector
            vector = tf.broadcast_to(vector, tf.stack([batch_size, self.cutoff]))
            if state is None:
                state = vector
            else:
                axes = letters[:mode]
                state = tf.einsum(f"z{axes},z{letters[mode]}->z{axes}{letters[mode]}", state, vector)
        return state


def _without_tape(operator):
    """A SampleDisplacement whose matrices the tape does not follow (its gradient reaches the amplitude).

    Its gradient in the matrices would be zeros, but zeros that the loop's gradient accumulates
    and takes back through their build, which XLA does not see to be zero.
    """
    if not isinstance(operator, SampleDisplacement):
        return operator
    return SampleDisplacement(
        operator.amplitude, tf.stop_gradient(operator.matrix), tf.stop_gradient(operator.slope)
    )


def _matrix_of(operator):
    """The operator as apply_operator differentiates it: a SampleDisplacement's matrix alone."""
    return operator.matrix if isinstance(operator, SampleDisplacement) else operator


def _is_real_displacement(gate: Gate) -> bool:
    """A displacement whose phase is the number 0: its matrix is real."""
    return gate.kind == "Dgate" and gate.parameters[1] == 0.0


def _common_number(parameters: list):
    """The number all of these gate parameters are, or None if they differ or are free parameters."""
    first = parameters[0]
    if isinstance(first, float) and all(parameter == first for parameter in parameters):
        return first
    return None


def _trace(state: tf.Tensor) -> tf.Tensor:
    magnitude = tf.math.real(state) ** 2 + tf.math.imag(state) ** 2
    return tf.reduce_sum(tf.reshape(magnitude, (tf.shape(state)[0], -1)), axis=1)


def _x_expectations(state: tf.Tensor, modes: int, real_dtype: tf.DType) -> tf.Tensor:
    """tr(ρ x_i) = 2 Re ⟨ψ|a_i|ψ⟩ for each mode i (ħ = 2), not divided by the trace."""
    cutoff = state.shape[-1]
    sqrt_n = tf.constant(np.sqrt(np.arange(1, cutoff)), state.dtype)
    means = []
    for mode in range(modes):
        moved = tf.experimental.numpy.moveaxis(state, mode + 1, -1)
        lowered = moved[..., 1:] * sqrt_n  # (a ψ)[n−1] = √n ψ[n]
        overlap = tf.math.conj(moved[..., :-1]) * lowered
        overlap = tf.reduce_sum(tf.reshape(overlap, (tf.shape(state)[0], -1)), axis=1)
        means.append(2.0 * tf.math.real(overlap))
    return tf.cast(tf.stack(means, axis=1), real_dtype)
