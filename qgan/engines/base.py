"""The interface every engine implements: run a program, give its ket, and measure ancillas of it."""

from __future__ import annotations

import abc
import dataclasses

import strawberryfields as sf
import tensorflow as tf

from qgan.engines.measurement import HeraldedOutput, heralded_moments


@dataclasses.dataclass(frozen=True)
class EngineOutput:
    """What an engine returns for a batch.

    Attributes:
        x_means: (batch, modes) float32 expectations of the x quadrature, ħ = 2, computed as
            tr(ρx) without dividing by the trace (as Strawberry Fields does).
        trace: (batch,) float32 norm of the truncated state; below 1 when the cutoff loses amplitude.
    """

    x_means: tf.Tensor
    trace: tf.Tensor


@dataclasses.dataclass(frozen=True, eq=False)
class TableEntry:
    """An argument given as one entry of a table of arguments: table[row, column].

    Engines take it wherever they take a tensor. The generator gives each gate parameter as an
    entry of its (layers, size) weight and each latent displacement as an entry of one
    (encodings, modes, batch) table, so the fock engine takes a parameter's successive layers as
    one slice of the table instead of stacking a slice per layer, and the compiled step grows
    little with depth.

    Attributes:
        table: a tensor of rank 2 (shared arguments) or 3 (per-sample arguments, batch last).
        row: the entry's row (a layer, or an encoding of the latent code).
        column: the entry's column (the index within the gate group, or the mode).
    """

    table: tf.Tensor
    row: int
    column: int

    def tensor(self) -> tf.Tensor:
        """The entry itself: a scalar, or a (batch,) tensor."""
        return self.table[self.row, self.column]


def argument_tensor(value):
    """The tensor (or number) of an argument given as one, or as a TableEntry."""
    return value.tensor() if isinstance(value, TableEntry) else value


class Engine(abc.ABC):
    """Runs a Strawberry Fields program in a truncated Fock space of dimension `cutoff` per mode."""

    name: str = ""
    #: Whether `run` may be traced by tf.function (the reference engine runs eagerly only).
    supports_graph: bool = False

    def __init__(self, cutoff: int):
        if cutoff < 2:
            raise ValueError(f"cutoff must be at least 2, got {cutoff}")
        self.cutoff = cutoff

    @abc.abstractmethod
    def run(self, program: sf.Program, arguments: dict, batch_size: int) -> EngineOutput:
        """Runs `program` on the vacuum for a batch.

        Args:
            program: the program; its free parameters are all named in `arguments`.
            arguments: free-parameter name → scalar tensor (shared by the batch) or (batch,) tensor,
                either given as a TableEntry.
            batch_size: number of samples in the batch.

        Returns:
            The EngineOutput, differentiable with respect to the argument tensors.
        """

    @abc.abstractmethod
    def ket(self, program: sf.Program, arguments: dict, batch_size: int) -> tf.Tensor:
        """Runs `program` on the vacuum and returns its truncated ket.

        Args: as for `run`.

        Returns:
            Complex tensor (batch, cutoff, …, cutoff), one axis per mode, differentiable with respect
            to the argument tensors.
        """

    def heralded(
        self,
        program: sf.Program,
        arguments: dict,
        batch_size: int,
        output_modes,
        ancilla_modes,
        detector="pnr",
    ) -> HeraldedOutput:
        """Runs `program`, measures `ancilla_modes` and reads the conditional means of `output_modes`.

        Args:
            program, arguments, batch_size: as for `run`.
            output_modes: modes whose conditional ⟨x⟩ and ⟨p⟩ are read.
            ancilla_modes: modes measured by the detectors.
            detector: a detectors.Detector (kind, efficiency, dark counts), or "pnr" / "threshold"
                for the ideal photon-number-resolving or click detector.

        Returns:
            The HeraldedOutput: every outcome's probability and conditional means, and the trace.
        """
        ket = self.ket(program, arguments, batch_size)
        return heralded_moments(ket, output_modes, ancilla_modes, detector)
