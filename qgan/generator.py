"""Generators of 2-D coordinates from latent noise: their shared sampling, and the CV circuit."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from qgan.circuits import ACTIVE_GROUPS, build_circuit
from qgan.engines import make_engine


class CoordinateGenerator(keras.layers.Layer):
    """What the GAN needs of a generator: latent noise, a forward pass with traces, chunked sampling.

    Subclasses set `latent_dim` and `jit_compile`, and implement `call(z, return_trace=False)`.
    """

    latent_dim: int
    jit_compile: bool
    supports_graph = True
    _compiled_forward = None

    def parameter_count(self) -> int:
        """The number of trainable scalars."""
        return sum(int(np.prod(weight.shape)) for weight in self.trainable_weights)

    def sample_latent(self, batch_size: int, seed=None) -> tf.Tensor:
        """Uniform latent noise in [-1, 1]^latent_dim (bounded, so no sample leaves the cutoff's reach)."""
        return keras.random.uniform((batch_size, self.latent_dim), minval=-1.0, maxval=1.0, seed=seed)

    def generate(self, num_samples: int, chunk_size: int = 256, seed: int | None = None):
        """Generates num_samples coordinates in fixed-size chunks (outside any training step).

        Args:
            num_samples: how many samples.
            chunk_size: samples per engine call; every call has this batch size.
            seed: seed of the latent noise.

        Returns:
            (coordinates (num_samples, output_dim), trace (num_samples,)) as NumPy arrays.
        """
        rng = np.random.default_rng(seed)
        chunks = -(-num_samples // chunk_size)
        z = rng.uniform(-1.0, 1.0, size=(chunks * chunk_size, self.latent_dim)).astype(np.float32)
        coordinates, traces = [], []
        forward = self._sampling_forward()
        for start in range(0, len(z), chunk_size):
            chunk, trace = forward(tf.constant(z[start : start + chunk_size]))
            coordinates.append(np.asarray(chunk))
            traces.append(np.asarray(trace))
        return np.concatenate(coordinates)[:num_samples], np.concatenate(traces)[:num_samples]

    def _sampling_forward(self):
        """(coordinates, trace) of a latent batch: a compiled function when the engine allows graphs."""
        if not self.supports_graph:
            return lambda z: self(z, return_trace=True)
        if self._compiled_forward is None:
            self._compiled_forward = tf.function(
                lambda z: self(z, return_trace=True), jit_compile=self.jit_compile, reduce_retracing=True
            )
        return self._compiled_forward


class QuantumGenerator(CoordinateGenerator):
    """Maps latent noise z ∈ [-1, 1]^modes to 2-D coordinates through a CV quantum circuit.

    Sample i is encoded as displacements Dgate(latent_scale·z_i) on each mode, then the
    circuit's layers act (with `reupload`, z is displaced into the modes again before every
    layer, by latent_scale·w_l,i·z_i with a trainable weight w per layer and mode, starting at 1),
    and the x-quadrature expectations of the first `output_dim` modes, after a trainable
    per-output scale and shift, are the coordinates. Active gates are bounded: squeezing
    r = max_squeeze·tanh(w), displacement d = max_displacement·tanh(w), Kerr κ = max_kerr·tanh(w);
    passive angles are unbounded. The weights are the same list for
    every engine, so `set_weights` carries a generator from one engine to another.

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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if output_dim > modes:
            raise ValueError(f"output_dim {output_dim} exceeds the number of modes {modes}")
        self.modes = modes
        self.latent_dim = modes
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
                name="latent_weights", shape=(self.circuit.encodings, modes), initializer="ones"
            )
        self.readout_scale = self.add_weight(name="readout_scale", shape=(output_dim,), initializer="ones")
        self.readout_shift = self.add_weight(name="readout_shift", shape=(output_dim,), initializer="zeros")

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
        """Free-parameter name → tensor for one batch of latent noise z of shape (batch, modes)."""
        arguments = {}
        for group, value in self.gate_parameters().items():
            for layer in range(self.num_layers):
                for index in range(self.circuit.group_sizes[group]):
                    arguments[self.circuit.parameter_name(group, layer, index)] = value[layer, index]
        z = tf.convert_to_tensor(z, tf.float32)
        for encoding in range(self.circuit.encodings):
            for mode in range(self.modes):
                displacement = self.latent_scale * z[:, mode]
                if self.latent_weights is not None:
                    displacement = displacement * self.latent_weights[encoding, mode]
                arguments[self.circuit.latent_name(encoding, mode)] = displacement
        return arguments

    def call(self, z, return_trace: bool = False):
        """Generates coordinates for latent noise z of shape (batch, modes).

        Args:
            z: latent noise, float, shape (batch, modes), entries in [-1, 1].
            return_trace: also return the state's trace per sample.

        Returns:
            (batch, output_dim) coordinates, and the (batch,) trace when return_trace.
        """
        z = tf.convert_to_tensor(z, tf.float32)
        batch_size = int(z.shape[0])
        output = self.engine.run(self.circuit.program, self.circuit_arguments(z), batch_size)
        coordinates = output.x_means[:, : self.output_dim] * self.readout_scale + self.readout_shift
        if return_trace:
            return coordinates, output.trace
        return coordinates

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
        )
        return config
