"""QuantumGenerator: 2-D coordinates from latent noise through a CV circuit, read by homodyne or heralding."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from qgan.engines import TableEntry, make_engine
from qgan.engines.detectors import Detector
from qgan.engines.measurement import outcome_count
from qgan.models.circuits import ACTIVE_GROUPS, build_circuit
from qgan.models.coordinate_generator import CoordinateGenerator

READOUTS = ("expectation", "heralded")
QUADRATURES = ("xp", "xx")


@keras.saving.register_keras_serializable(package="qgan")
class QuantumGenerator(CoordinateGenerator):
    """Maps latent noise z ∈ [-1, 1]^modes to 2-D coordinates through a CV quantum circuit.

    Sample i is encoded as displacements Dgate(latent_scale·z_i) on each mode, then the
    circuit's layers act (with `reupload`, z is displaced into the modes again before every
    layer, by latent_scale·w_l,i·z_i with a trainable weight w per layer and mode, starting at
    1/layers so that the whole encoding starts as large as one upload).

    The readout makes coordinates of the final state, through a trainable per-output scale and
    shift. `expectation`: the x-quadrature expectations tr(ρx) of the first `output_dim` modes.
    `heralded`: the last `ancillas` modes are measured by photon-number-resolving or threshold
    detectors; each outcome n has probability p_n(z), and the conditional state's means give
    the outcome's coordinates, (⟨x⟩, ⟨p⟩) of mode 0 (`quadratures` "xp") or ⟨x⟩ of modes 0 and 1
    ("xx"). The generator is then a mixture: the latent gains one column that draws the outcome
    by the Born rule, and `mixture(z)` gives every outcome at once.

    Active gates are bounded: squeezing r = max_squeeze·tanh(w), displacement
    d = max_displacement·tanh(w), Kerr κ = max_kerr·tanh(w); passive angles are unbounded. The
    weights are the same list for every engine, so `set_weights` carries a generator from one
    engine to another.

    Args:
        modes: optical modes (the latent dimension too).
        layers: CV neural-network layers.
        cutoff: Fock cutoff per mode.
        engine: name of the engine that runs the circuit ("fock" or "sf").
        output_dim: number of modes read out as coordinates.
        latent_scale: displacement per unit of latent noise.
        max_squeeze: bound on the squeezing magnitude.
        max_displacement: bound on each layer's displacement.
        max_kerr: bound on each Kerr strength.
        init_std: standard deviation of the initial weights (small: the state starts near
            the latent coherent state and well inside the cutoff).
        seed: seed of the weight initialisers.
        jit_compile: compile `generate` with XLA when the engine supports graphs.
        reupload: encode the latent noise before every layer, with trainable per-layer weights.
        readout: "expectation" or "heralded".
        ancillas: with the heralded readout, how many of the last modes are measured.
        detector: with the heralded readout, "pnr" or "threshold".
        quadratures: with the heralded readout, "xp" or "xx".
        ancilla_offset: a fixed displacement added to each ancilla's first latent displacement, so that
            the detectors' outcomes start spread over many photon numbers.
        latent_distribution: "uniform" or "gaussian" (see `CoordinateGenerator.shaped_latent`).
        detector_efficiency: with the heralded readout, each detector's efficiency η (0 < η ≤ 1).
        dark_counts: with the heralded readout, the mean dark counts ν of each detector.
        output_loss: the transmission T of a loss channel before the read modes' quadratures: it
            scales every ⟨a⟩, so every coordinate before the readout's affine map, by √T.
        latent_output: after the circuit, displace the read modes by the latent noise once more:
            by α = latent_scale·(v₀z₀ + i·v₁z₁) on mode 0 (quadratures "xp"), or by latent_scale·v₀z₀
            and latent_scale·v₁z₁ on modes 0 and 1, with trainable v (starting at 1). D(α) turns ⟨a⟩
            into ⟨a⟩ + α exactly and leaves the outcome probabilities alone, so every outcome's
            cluster gains the same spread, isotropic for a Gaussian latent and v₀ = v₁.
    """

    def __init__(
        self,
        modes: int = 2,
        layers: int = 2,
        cutoff: int = 8,
        engine: str = "fock",
        output_dim: int = 2,
        latent_scale: float = 1.0,
        max_squeeze: float = 0.5,
        max_displacement: float = 1.0,
        max_kerr: float = 0.5,
        init_std: float = 0.1,
        seed: int | None = None,
        jit_compile: bool = True,
        reupload: bool = False,
        readout: str = "expectation",
        ancillas: int = 1,
        detector: str = "pnr",
        quadratures: str = "xp",
        ancilla_offset: float = 0.0,
        latent_distribution: str = "uniform",
        detector_efficiency: float = 1.0,
        dark_counts: float = 0.0,
        output_loss: float = 1.0,
        latent_output: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_latent_distribution(latent_distribution)
        if not 0.0 < output_loss <= 1.0:
            raise ValueError(f"output_loss {output_loss!r} is not allowed; use a transmission 0 < T ≤ 1")
        self.output_loss = output_loss
        self.detector_model = Detector(detector, detector_efficiency, dark_counts)
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; allowed: {', '.join(READOUTS)}")
        if quadratures not in QUADRATURES:
            raise ValueError(f"unknown quadratures {quadratures!r}; allowed: {', '.join(QUADRATURES)}")
        heralded = readout == "heralded"
        self.output_modes = tuple(range(1 if heralded and quadratures == "xp" else output_dim))
        if heralded and not 1 <= ancillas <= modes - len(self.output_modes):
            raise ValueError(
                f"ancillas {ancillas} with {modes} modes and quadratures {quadratures!r}: allowed "
                f"1 to {modes - len(self.output_modes)}"
            )
        if output_dim > modes:
            raise ValueError(f"output_dim {output_dim} exceeds the number of modes {modes}")
        self.modes = modes
        self.readout = readout
        self.ancillas = ancillas
        self.detector = detector
        self.quadratures = quadratures
        self.ancilla_offset = ancilla_offset
        self.ancilla_modes = tuple(range(modes - ancillas, modes)) if heralded else ()
        self.outcomes = outcome_count(cutoff, ancillas, detector) if heralded else 0
        self.latent_dim = modes + 1 if heralded else modes
        self.num_layers = layers
        self.cutoff = cutoff
        self.output_dim = output_dim
        self.latent_scale = latent_scale
        self.bounds = {"squeeze": max_squeeze, "displace": max_displacement, "kerr": max_kerr}
        self.init_std = init_std
        self.seed = seed
        self.reupload = reupload
        self.circuit = build_circuit(modes, layers, reupload=reupload)
        self.engine = make_engine(engine, cutoff)
        self.supports_graph = self.engine.supports_graph
        self.jit_compile = jit_compile
        self.group_weights = {}
        for offset, (group, size) in enumerate(self.circuit.group_sizes.items()):
            if size == 0:
                continue
            self.group_weights[group] = self.add_weight(
                name=group,
                shape=(layers, size),
                initializer=keras.initializers.RandomNormal(
                    stddev=init_std, seed=None if seed is None else seed + offset
                ),
            )
        self.latent_weights = None
        if reupload:
            self.latent_weights = self.add_weight(
                name="latent_weights",
                shape=(self.circuit.encodings, modes),
                initializer=keras.initializers.Constant(1.0 / self.circuit.encodings),
            )
        self.latent_output = latent_output
        self.output_latent_weights = None
        if latent_output:
            self.output_latent_weights = self.add_weight(
                name="output_latent_weights", shape=(2,), initializer="ones"
            )
        self.readout_scale = self.add_weight(name="readout_scale", shape=(output_dim,), initializer="ones")
        self.readout_shift = self.add_weight(name="readout_shift", shape=(output_dim,), initializer="zeros")
        self.built = True  # every weight exists now, whatever the input (Keras saving checks this)

    def gate_parameters(self) -> dict:
        """The physical gate parameters by group, shape (layers, size), after the bounds."""
        parameters = {}
        for group, weight in self.group_weights.items():
            value = tf.convert_to_tensor(weight)
            if group in ACTIVE_GROUPS:
                value = self.bounds[group] * tf.tanh(value)
            parameters[group] = value
        return parameters

    def circuit_arguments(self, z: tf.Tensor) -> dict:
        """Free-parameter name → argument for one batch of latent noise z of shape (batch, modes).

        Each argument is a TableEntry: a gate parameter an entry of its group's (layers, size)
        values, a latent displacement an entry of one (encodings, modes, batch) table, so that
        the fock engine takes a parameter's layers as one slice.
        """
        arguments = {}
        for group, value in self.gate_parameters().items():
            for layer in range(self.num_layers):
                for index in range(self.circuit.group_sizes[group]):
                    name = self.circuit.parameter_name(group, layer, index)
                    arguments[name] = TableEntry(value, layer, index)
        z = self.shaped_latent(z, self.modes)
        rows = []
        for encoding in range(self.circuit.encodings):
            row = []
            for mode in range(self.modes):
                displacement = self.latent_scale * z[:, mode]
                if self.latent_weights is not None:
                    displacement = displacement * self.latent_weights[encoding, mode]
                if encoding == 0 and mode in self.ancilla_modes:
                    displacement = displacement + self.ancilla_offset
                row.append(displacement)
            rows.append(tf.stack(row))
        # stacked from the entries, not computed as one broadcast product, which XLA rounds otherwise
        displacements = tf.stack(rows)
        for encoding in range(self.circuit.encodings):
            for mode in range(self.modes):
                name = self.circuit.latent_name(encoding, mode)
                arguments[name] = TableEntry(displacements, encoding, mode)
        return arguments

    def output_displacement(self, z) -> tf.Tensor:
        """The latent output displacement α of each latent row, as (batch, 2): its two real parameters.

        For quadratures "xp" they are Re α and Im α on mode 0, otherwise the real displacements of
        modes 0 and 1; zeros without `latent_output`.
        """
        z = self.shaped_latent(z, 2)
        if self.output_latent_weights is None:
            return tf.zeros_like(z)
        return self.latent_scale * self.output_latent_weights * z

    def shifted(self, means, z):
        """The read quadratures' means (batch, [outcomes,] 2) after the output displacement: + 2·α (ħ = 2)."""
        if self.output_latent_weights is None:
            return means
        shift = 2.0 * self.output_displacement(z)
        return means + (shift[:, None, :] if means.shape.rank == 3 else shift)

    def call(self, z, return_trace: bool = False):
        """Generates coordinates for latent noise z of shape (batch, modes).

        Args:
            z: latent noise, float, shape (batch, modes), entries in [-1, 1].
            return_trace: also return the state's trace per sample.

        Returns:
            (batch, output_dim) coordinates, and the (batch,) trace when return_trace.
        """
        z = tf.convert_to_tensor(z, tf.float32)
        if self.outcomes:
            coordinates, trace, _ = self.sample_outcomes(z)
        else:
            output = self.engine.run(self.circuit.program, self.circuit_arguments(z), int(z.shape[0]))
            means = self.shifted(output.x_means[:, : self.output_dim], z)
            coordinates = (
                means * np.float32(np.sqrt(self.output_loss)) * self.readout_scale + self.readout_shift
            )
            trace = output.trace
        if return_trace:
            return coordinates, trace
        return coordinates

    def mixture(self, z):
        """Every detector outcome's coordinates, probability and the trace, for latent z (batch, modes + 1).

        Returns:
            (coordinates (batch, outcomes, output_dim), probabilities (batch, outcomes) summing to the
            trace, trace (batch,)).
        """
        if not self.outcomes:
            raise NotImplementedError("mixture() needs the heralded readout")
        z = tf.convert_to_tensor(z, tf.float32)
        output = self.engine.heralded(
            self.circuit.program,
            self.circuit_arguments(z[:, : self.modes]),
            int(z.shape[0]),
            self.output_modes,
            self.ancilla_modes,
            self.detector_model,
        )
        if self.quadratures == "xp":
            means = tf.concat([output.x_means, output.p_means], axis=-1)
        else:
            means = output.x_means
        means = self.shifted(tf.cast(means, tf.float32), z)
        coordinates = means * np.float32(np.sqrt(self.output_loss)) * self.readout_scale + self.readout_shift
        return coordinates, tf.cast(output.probabilities, tf.float32), tf.cast(output.trace, tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(
            modes=self.modes,
            layers=self.num_layers,
            cutoff=self.cutoff,
            engine=self.engine.name,
            output_dim=self.output_dim,
            latent_scale=self.latent_scale,
            max_squeeze=self.bounds["squeeze"],
            max_displacement=self.bounds["displace"],
            max_kerr=self.bounds["kerr"],
            init_std=self.init_std,
            seed=self.seed,
            jit_compile=self.jit_compile,
            reupload=self.reupload,
            readout=self.readout,
            ancillas=self.ancillas,
            detector=self.detector,
            quadratures=self.quadratures,
            ancilla_offset=self.ancilla_offset,
            latent_distribution=self.latent_distribution,
            detector_efficiency=self.detector_model.efficiency,
            dark_counts=self.detector_model.dark_counts,
            output_loss=self.output_loss,
            latent_output=self.latent_output,
        )
        return config
