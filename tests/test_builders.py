"""Checkpoints of the whole training state, with and without the running means."""

import os

import numpy as np
import pytest
import tensorflow as tf

from qgan.builders import build_gan, make_checkpoint, restore_checkpoint
from qgan.config import TrainConfig

CONFIG = TrainConfig(generator="classical", jit_compile=False)


def trained_state():
    gan = build_gan(CONFIG)
    step = tf.Variable(7, dtype=tf.int64)
    gan.trackers["d_loss"].update_state([1.0, 2.0, 6.0])
    gan.trackers["trace_min"].update_state([0.98, 0.97])
    gan.critic.trainable_variables[0].assign(tf.fill(gan.critic.trainable_variables[0].shape, 0.25))
    return gan, step


@pytest.mark.parametrize("running_means", [True, False], ids=["today", "before-running-means"])
def test_a_checkpoint_restores_with_or_without_running_means(tmp_path, running_means):
    gan, step = trained_state()
    path = make_checkpoint(gan, step, running_means=running_means).save(os.path.join(tmp_path, "ckpt"))
    fresh, fresh_step = build_gan(CONFIG), tf.Variable(0, dtype=tf.int64)
    restore_checkpoint(fresh, fresh_step, path)
    assert int(fresh_step.numpy()) == 7
    np.testing.assert_array_equal(fresh.critic.trainable_variables[0].numpy(), 0.25)
    if running_means:
        assert float(fresh.trackers["d_loss"].result()) == 3.0
        assert float(fresh.trackers["trace_min"].result()) == pytest.approx(0.97)
    else:
        assert float(fresh.trackers["d_loss"].result()) == 0.0
        assert float(fresh.trackers["trace_min"].result()) == float("inf")


def test_a_checkpoint_of_another_gan_is_refused(tmp_path):
    gan, step = trained_state()
    path = make_checkpoint(gan, step).save(os.path.join(tmp_path, "ckpt"))
    other = build_gan(TrainConfig(generator="classical", jit_compile=False, critic_units=(32,)))
    with pytest.raises((AssertionError, ValueError, tf.errors.OpError)):
        restore_checkpoint(other, tf.Variable(0, dtype=tf.int64), path)
