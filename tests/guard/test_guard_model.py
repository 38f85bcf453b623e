"""The guard under Keras fit on models that are not GANs: a GRU on NaN batches, recovery, stop, logs."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from qgan.guard import GradientGuard, GuardedModel, GuardMonitor, Sanitize

STEPS, FEATURES, BATCH = 6, 3, 8
NAN_BATCHES = (2, 5)  # of 8 per epoch: batch 2 has a NaN input, batch 5 a NaN target


def sequence_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * BATCH, STEPS, FEATURES)).astype(np.float32)
    y = x[:, :, :1].sum(axis=1) / STEPS
    x[NAN_BATCHES[0] * BATCH + 3, 4, 1] = np.nan
    y[NAN_BATCHES[1] * BATCH + 6, 0] = np.nan
    return x, y


def gru_layers(seed):
    inputs = keras.Input((STEPS, FEATURES))
    hidden = keras.layers.GRU(8, seed=seed, name="gru")(inputs)
    outputs = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed), name="head")(
        hidden
    )
    return inputs, outputs


def test_guarded_gru_survives_nan_batches_that_ruin_the_plain_one():
    x, y = sequence_data()
    epochs = 3
    keras.utils.set_random_seed(1)
    guard = GradientGuard(name="gru_guard")
    guarded = GuardedModel(*gru_layers(seed=1), guard=guard)
    guarded.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    plain = keras.Model(*gru_layers(seed=1))
    plain.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    plain.set_weights(guarded.get_weights())

    history = guarded.fit(
        x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[GuardMonitor([guard])]
    )
    plain.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)

    assert all(np.all(np.isfinite(weight)) for weight in guarded.get_weights())
    assert any(np.any(np.isnan(weight)) for weight in plain.get_weights())
    # every NaN batch gives a NaN loss: skipped, nothing applied, counted
    assert guard.steps == 8 * epochs
    assert guard.skipped_steps == len(NAN_BATCHES) * epochs
    assert guard.nonfinite_loss_steps == len(NAN_BATCHES) * epochs
    assert guarded.optimizer.iterations.numpy() == (8 - len(NAN_BATCHES)) * epochs
    assert history.history["gru_guard_skipped_steps"] == [2, 4, 6]
    assert all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_sanitized_gru_returns_finite_outputs_for_nan_and_inf_inputs():
    inputs = keras.Input((STEPS, FEATURES))
    hidden = keras.layers.GRU(4, seed=0)(Sanitize(clamp=10.0)(inputs))
    model = keras.Model(inputs, Sanitize()(hidden))
    x = np.random.default_rng(1).normal(size=(4, STEPS, FEATURES)).astype(np.float32)
    x[0, 1, 0], x[1, 2, 2], x[2, 0, 1] = np.nan, np.inf, -np.inf
    assert np.all(np.isfinite(model(x).numpy()))
    unprotected = keras.Sequential([keras.Input((STEPS, FEATURES)), keras.layers.GRU(4, seed=0)])
    assert not np.all(np.isfinite(unprotected(x).numpy()))


class LearningRateSpike(keras.callbacks.Callback):
    """Spikes the learning rate before batch `at`; records the weights then and at the first rollback."""

    def __init__(self, guard, at, rate):
        super().__init__()
        self.guard, self.at, self.rate = guard, at, rate
        self.batch_count = 0
        self.before_spike = None
        self.at_first_rollback = None
        self.rate_after_first_rollback = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.batch_count == self.at:
            self.before_spike = [weight.copy() for weight in self.model.get_weights()]
            self.model.optimizer.learning_rate.assign(self.rate)
        self.batch_count += 1

    def on_train_batch_end(self, batch, logs=None):
        if self.guard.recoveries == 1 and self.at_first_rollback is None:
            self.at_first_rollback = [weight.copy() for weight in self.model.get_weights()]
            self.rate_after_first_rollback = float(self.model.optimizer.learning_rate.numpy())


def regression_data(size=64):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(size, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    return x, y


def dense_model(guard):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1, kernel_initializer="zeros", name="dense")(inputs)
    model = GuardedModel(inputs, outputs, guard=guard)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def test_learning_rate_spike_is_rolled_back_with_halved_rates_until_training_is_finite():
    x, y = regression_data()
    guard = GradientGuard(clip_value=None, max_consecutive_bad=3, snapshot_every=1, recovery="rollback")
    model = dense_model(guard)
    spike = LearningRateSpike(guard, at=5, rate=1e6)
    model.fit(
        x, y, batch_size=8, epochs=60, shuffle=False, verbose=0, callbacks=[GuardMonitor([guard]), spike]
    )
    # the first rollback restores the weights from before the spike and halves the spiked rate
    for restored, saved in zip(spike.at_first_rollback, spike.before_spike):
        np.testing.assert_array_equal(restored, saved)
    assert spike.rate_after_first_rollback == 5e5
    # rollbacks continue until the rate is small enough; the run ends finite and fitted
    assert guard.recoveries >= 2
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e6 * 0.5**guard.recoveries)
    weights = model.get_weights()
    assert all(np.all(np.isfinite(weight)) for weight in weights)
    np.testing.assert_allclose(weights[0][:, 0], [1.0, -2.0, 0.5, 3.0], atol=1e-2)


def test_stop_recovery_stops_fit_cleanly():
    x, y = regression_data(size=80)
    x[24:] = np.nan  # batches 3.. of 10 are NaN
    guard = GradientGuard(recovery="stop", max_consecutive_bad=2, name="stopper")
    model = dense_model(guard)
    monitor = GuardMonitor([guard])
    history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[monitor])
    assert monitor.stopped_by == "stopper"
    assert guard.steps == 5 and guard.skipped_steps == 2 and guard.recoveries == 1
    assert model.optimizer.iterations.numpy() == 3
    assert len(history.epoch) == 1
    assert all(np.all(np.isfinite(weight)) for weight in model.get_weights())


def test_monitor_puts_counters_and_health_into_csv_logs(tmp_path):
    x, y = regression_data()
    x[8] = np.inf  # batch 1 has an Inf input
    guard = GradientGuard(name="g")
    model = dense_model(guard)
    path = tmp_path / "log.csv"
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[GuardMonitor([guard], health=True), keras.callbacks.CSVLogger(str(path))],
    )
    rows = list(csv.DictReader(path.open()))
    assert [int(row["g_skipped_steps"]) for row in rows] == [1, 2]
    assert [int(row["g_nonfinite_loss_steps"]) for row in rows] == [1, 2]
    assert [int(row["g/dense/kernel/none"]) for row in rows] == [0, 0]
    assert float(rows[-1]["g/dense/kernel/last_norm"]) > 0


def test_guard_works_inside_an_xla_compiled_fit():
    x, y = regression_data()
    x[16] = np.nan
    guard = GradientGuard()
    inputs = keras.Input((4,))
    model = GuardedModel(inputs, keras.layers.Dense(1)(inputs), guard=guard)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", jit_compile=True)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert guard.skipped_steps == 2
    assert all(np.all(np.isfinite(weight)) for weight in model.get_weights())
    assert tf.reduce_all(tf.math.is_finite(model(x[:8]))).numpy()


class BatchLogs(keras.callbacks.Callback):
    """Keeps every batch's logs as the callbacks after the monitor see them."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def on_train_batch_end(self, batch, logs=None):
        self.rows.append(dict(logs))


def test_monitor_reports_every_batch_and_logs_an_event_after_many_quiet_batches(caplog):
    x, y = regression_data(size=96)  # 12 batches of 8
    x[8] = np.nan  # batch 1: a NaN loss
    x[88, 2] = 1e4  # batch 11: finite, but the kernel's gradient far above the threshold
    guard = GradientGuard(large_grad_threshold=1e3, clip_value=None, name="g")
    model = dense_model(guard)
    batches = BatchLogs()
    with caplog.at_level("WARNING", logger="qgan.guard"):
        model.fit(
            x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[GuardMonitor([guard]), batches]
        )
    assert [row["g_skipped_steps"] for row in batches.rows] == [0] + [1] * 11
    assert [row["g_nonfinite_loss_steps"] for row in batches.rows] == [0] + [1] * 11
    assert [row["g_large_grads"] for row in batches.rows] == [0] * 11 + [1]
    assert [row["g_nonfinite_grads"] for row in batches.rows] == [0] + [2] * 11
    # each event is logged once, the large gradient after nine batches that changed no counter
    assert [record.getMessage() for record in caplog.records] == [
        "g: non-finite loss; such steps update nothing",
        "g: gradient of 'dense/kernel' held NaN/Inf; that variable is left untouched in such steps",
        "g: gradient of 'dense/bias' held NaN/Inf; that variable is left untouched in such steps",
        "g: gradient of 'dense/kernel' had a norm above 1000.0",
    ]
