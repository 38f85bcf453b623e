"""The reference engine: Strawberry Fields' own `tf` backend (eager only)."""

from __future__ import annotations

import logging

import strawberryfields as sf
import tensorflow as tf

from qgan.engines.base import Engine, EngineOutput, argument_tensor


class _DropComplexCastWarning(logging.Filter):
    """Drops TensorFlow's "casting complex64 to float32" warning, which SF's gradients emit per gate."""

    def filter(self, record):
        return "casting an input of type complex" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_DropComplexCastWarning())


class StrawberryFieldsEngine(Engine):
    """Runs the program with `sf.Engine("tf")`, one batched pure-state simulation per call."""

    name = "sf"
    supports_graph = False

    def _state(self, program: sf.Program, arguments: dict, batch_size: int):
        arguments = {name: argument_tensor(value) for name, value in arguments.items()}
        options = {"cutoff_dim": self.cutoff}
        if batch_size > 1:
            options["batch_size"] = batch_size
        else:  # SF's batched mode refuses a batch of one; run unbatched with scalar arguments
            arguments = {name: tf.reshape(value, ()) for name, value in arguments.items()}
        return sf.Engine("tf", backend_options=options).run(program, args=arguments).state

    def ket(self, program: sf.Program, arguments: dict, batch_size: int) -> tf.Tensor:
        ket = self._state(program, arguments, batch_size).ket()
        return tf.reshape(ket, (batch_size,) + (self.cutoff,) * program.num_subsystems)

    def run(self, program: sf.Program, arguments: dict, batch_size: int) -> EngineOutput:
        state = self._state(program, arguments, batch_size)
        x_means = [state.quad_expectation(mode, 0.0)[0] for mode in range(program.num_subsystems)]
        x_means = tf.reshape(tf.stack(x_means, axis=-1), (batch_size, program.num_subsystems))
        trace = tf.reshape(tf.math.real(state.trace()), (batch_size,))
        return EngineOutput(x_means=tf.cast(x_means, tf.float32), trace=tf.cast(trace, tf.float32))
