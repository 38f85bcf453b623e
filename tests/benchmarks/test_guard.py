"""qgan.benchmarks.guard: the guard's cost against an unguarded and a Keras skip-only step."""

import pytest

from qgan.benchmarks import guard as guard_benchmark


def test_guard_overhead_times_every_variant_of_the_same_model():
    record = guard_benchmark.guard_overhead("mlp", steps=3, rounds=2)
    assert record["model"] == "mlp" and record["compile"] == "tf.function"
    assert record["plain_step_s"] > 0 and record["guarded_step_s"] > 0 and record["keras_skip_step_s"] > 0
    assert record["overhead"] == pytest.approx(record["guarded_step_s"] / record["plain_step_s"] - 1)
    assert record["keras_skip_overhead"] == pytest.approx(
        record["keras_skip_step_s"] / record["plain_step_s"] - 1
    )
    table = guard_benchmark.guard_table([record]).splitlines()
    assert table[2].startswith("| mlp | tf.function | ")
    assert table[2].endswith(f"| {100 * record['keras_skip_overhead']:+.1f}% |")


def test_guard_overhead_rejects_an_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'cnn'; allowed: gru, mlp"):
        guard_benchmark.guard_overhead("cnn", steps=1, rounds=1)
