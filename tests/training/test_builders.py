"""Checkpoints of the whole training state, and those written before the running means or branch budgets."""

import os

import numpy as np
import pytest
import tensorflow as tf

from qgan.guard import GradientGuard
from qgan.training.builders import build_gan, make_checkpoint, restore_checkpoint
from qgan.training.config import TrainConfig

BRANCH_BUDGET = GradientGuard.BRANCH_BUDGET

CONFIG = TrainConfig(generator="classical", jit_compile=False)


def trained_state():
    gan = build_gan(CONFIG)
    step = tf.Variable(7, dtype=tf.int64)
    gan.trackers["d_loss"].update_state([1.0, 2.0, 6.0])
    gan.trackers["trace_min"].update_state([0.98, 0.97])
    gan.critic.trainable_variables[0].assign(tf.fill(gan.critic.trainable_variables[0].shape, 0.25))
    gan.critic_guard.state_variables()[BRANCH_BUDGET].assign(4)
    gan.generator_guard.state_variables()[BRANCH_BUDGET].assign(2)
    return gan, step


def budgets(gan):
    return [
        int(guard.state_variables()[BRANCH_BUDGET].numpy())
        for guard in (gan.critic_guard, gan.generator_guard)
    ]


@pytest.mark.parametrize(
    "running_means, branch_budgets",
    [(True, True), (True, False), (False, False)],
    ids=["today", "before-branch-budgets", "before-running-means"],
)
def test_a_checkpoint_restores_with_or_without_running_means_and_branch_budgets(
    tmp_path, running_means, branch_budgets
):
    gan, step = trained_state()
    checkpoint = make_checkpoint(gan, step, running_means=running_means, branch_budgets=branch_budgets)
    path = checkpoint.save(os.path.join(tmp_path, "ckpt"))
    fresh, fresh_step = build_gan(CONFIG), tf.Variable(0, dtype=tf.int64)
    assert budgets(fresh) == [-1, -1]
    restore_checkpoint(fresh, fresh_step, path)
    assert int(fresh_step.numpy()) == 7
    np.testing.assert_array_equal(fresh.critic.trainable_variables[0].numpy(), 0.25)
    if running_means:
        assert float(fresh.trackers["d_loss"].result()) == 3.0
        assert float(fresh.trackers["trace_min"].result()) == pytest.approx(0.97)
    else:
        assert float(fresh.trackers["d_loss"].result()) == 0.0
        assert float(fresh.trackers["trace_min"].result()) == float("inf")
    # without a saved budget each guard's next healthy step takes the general branch, which is always safe
    assert budgets(fresh) == ([4, 2] if branch_budgets else [-1, -1])


def test_a_checkpoint_of_another_gan_is_refused(tmp_path):
    gan, step = trained_state()
    path = make_checkpoint(gan, step).save(os.path.join(tmp_path, "ckpt"))
    other = build_gan(TrainConfig(generator="classical", jit_compile=False, critic_units=(32,)))
    with pytest.raises((AssertionError, ValueError, tf.errors.OpError)):
        restore_checkpoint(other, tf.Variable(0, dtype=tf.int64), path)
