"""The gradient guard's cost: guarded, unguarded and Keras skip-only train steps of one model, interleaved."""

from __future__ import annotations

import itertools
import statistics
import time

from qgan.runtime.fresh_process import in_fresh_process

GUARD_MODELS = ("gru", "mlp")


def _guard_benchmark_model(name: str):
    """A model, an input batch and a target batch for the guard-overhead benchmark."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    if name == "gru":
        inputs = keras.Input((20, 8))
        outputs = keras.layers.Dense(1)(keras.layers.GRU(32, seed=0)(inputs))
        x = rng.normal(size=(64, 20, 8)).astype(np.float32)
    elif name == "mlp":
        inputs = keras.Input((2,))
        hidden = keras.layers.Dense(64, activation="relu")(inputs)
        outputs = keras.layers.Dense(1)(keras.layers.Dense(64, activation="relu")(hidden))
        x = rng.normal(size=(32, 2)).astype(np.float32)
    else:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(GUARD_MODELS)}")
    y = rng.normal(size=(len(x), 1)).astype(np.float32)
    return keras.Model(inputs, outputs), x, y


#: what each variant of the guard benchmark hands the gradients to
GUARD_VARIANTS = ("plain", "guarded", "keras_skip")


def guard_overhead(name: str, jit_compile: bool = False, steps: int = 100, rounds: int = 15) -> dict:
    """Times a guarded, an unguarded and a Keras skip-only tf.function train step of one model, interleaved.

    All three compute the same MSE loss and gradients with Adam. "plain" applies them; "guarded"
    hands them to a default GradientGuard (filter policy, value clipping, snapshots every 10
    healthy steps); "keras_skip" applies them through Keras' LossScaleOptimizer at scale 1, which
    skips non-finite steps and does nothing else: the cost of the least a conditional step can do.

    Args:
        name: one of GUARD_MODELS (a GRU sequence model or a small MLP).
        jit_compile: compile the steps with XLA instead of plain tf.function graphs.
        steps: steps per timed block.
        rounds: timed blocks per variant, alternating between the variants.

    Returns:
        Median seconds per step of each variant and the relative overheads against "plain".
    """
    import keras
    import tensorflow as tf

    from qgan.guard import GradientGuard

    timings = {}
    steps_by_variant = {}
    for variant in GUARD_VARIANTS:
        model, x, y = _guard_benchmark_model(name)
        optimizer = keras.optimizers.Adam(1e-3)
        if variant == "keras_skip":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=1.0)
        optimizer.build(model.trainable_variables)
        guard = None
        if variant == "guarded":
            guard = GradientGuard()
            guard.build(optimizer, model.trainable_variables)
        x, y = tf.constant(x), tf.constant(y)

        steps_by_variant[variant] = tf.function(
            _train_step(model, optimizer, guard, x, y), jit_compile=jit_compile
        )
        for _ in range(3):
            steps_by_variant[variant]()
        timings[variant] = []
    for _ in range(rounds):
        for variant, step in steps_by_variant.items():
            started = time.perf_counter()
            for _ in range(steps):
                loss = step()
            float(loss)
            timings[variant].append((time.perf_counter() - started) / steps)
    medians = {variant: statistics.median(timings[variant]) for variant in GUARD_VARIANTS}
    return {
        "model": name,
        "compile": "xla" if jit_compile else "tf.function",
        "plain_step_s": medians["plain"],
        "guarded_step_s": medians["guarded"],
        "keras_skip_step_s": medians["keras_skip"],
        "overhead": medians["guarded"] / medians["plain"] - 1.0,
        "keras_skip_overhead": medians["keras_skip"] / medians["plain"] - 1.0,
    }


def _train_step(model, optimizer, guard, x, y):
    """An MSE train step of model on (x, y), through guard when given, else straight to the optimizer."""
    import tensorflow as tf

    def train_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        if guard is not None:
            guard.apply_gradients(optimizer, grads, model.trainable_variables, loss=loss)
        else:
            optimizer.apply(grads, model.trainable_variables)
        return loss

    return train_step


def guard_table(records: list) -> str:
    """Guard-overhead records as a Markdown table."""
    lines = [
        "| model | compiled as | unguarded step (ms) | guarded step (ms) | guard overhead "
        "| Keras skip-only step (ms) | its overhead |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for record in records:
        lines.append(
            f"| {record['model']} | {record['compile']} | {1e3 * record['plain_step_s']:.3f} "
            f"| {1e3 * record['guarded_step_s']:.3f} | {100 * record['overhead']:+.1f}% "
            f"| {1e3 * record['keras_skip_step_s']:.3f} | {100 * record['keras_skip_overhead']:+.1f}% |"
        )
    return "\n".join(lines)


def run_guard_overheads(models=GUARD_MODELS, log=print) -> list:
    """guard_overhead for each model, each in a fresh child process."""
    records = []
    for name, jit_compile in itertools.product(models, (False, True)):
        record = in_fresh_process(guard_overhead, name, jit_compile)
        log(
            f"guard overhead {name:<4s} {record['compile']:<11s} "
            f"plain {1e3 * record['plain_step_s']:.3f} ms  guarded {1e3 * record['guarded_step_s']:.3f} ms  "
            f"({100 * record['overhead']:+.1f}%)  "
            f"Keras skip-only {1e3 * record['keras_skip_step_s']:.3f} ms "
            f"({100 * record['keras_skip_overhead']:+.1f}%)"
        )
        records.append(record)
    return records
