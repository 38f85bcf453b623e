"""EpochTensorBoard: Keras' TensorBoard callback minus its per-batch calls that write nothing."""

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from qgan.training.callbacks import EpochTensorBoard


def fit_with(callback, monkeypatch, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    calls = []
    scalar = callback.summary.scalar
    callback.summary.scalar = lambda name, *args, **kwargs: (
        calls.append(name) or scalar(name, *args, **kwargs)
    )
    model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=[callback])
    return calls


def logged(log_dir):
    accumulator = event_accumulator.EventAccumulator(str(log_dir / "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: len(accumulator.Tensors(tag)) for tag in accumulator.Tags()["tensors"]}


def test_per_epoch_writing_makes_no_per_batch_calls_and_writes_each_epoch(tmp_path, monkeypatch):
    calls = fit_with(EpochTensorBoard(tmp_path, write_graph=False), monkeypatch)
    # Keras' own callback calls scalar for each of 4 batches × 2 epochs; this one only per epoch
    assert calls == ["epoch_loss", "epoch_learning_rate"] * 2
    assert logged(tmp_path) == {"epoch_loss": 2, "epoch_learning_rate": 2}


@pytest.mark.parametrize(
    "options", [{"update_freq": 2}, {"update_freq": "epoch", "write_steps_per_second": True}]
)
def test_batch_level_options_still_write_per_batch(tmp_path, monkeypatch, options):
    calls = fit_with(EpochTensorBoard(tmp_path, write_graph=False, **options), monkeypatch)
    per_batch = [name for name in calls if not name.startswith("epoch_")]
    # Keras' per-batch method: one call per log each batch (and the step rate when asked for)
    assert len(per_batch) == (16 if "write_steps_per_second" in options else 8)
    written = logged(tmp_path)
    assert written["epoch_loss"] == 2
    if options.get("update_freq") == 2:
        assert written["batch_loss"] == 4  # batches 2, 4, 6, 8 of 8
