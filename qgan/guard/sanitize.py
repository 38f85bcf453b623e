"""Sanitize (a Keras layer replacing NaN/Inf) and check_finite (a report of NaN, Inf and extreme values)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np


class Sanitize(keras.layers.Layer):
    """Replaces NaN and ±Inf in its input and optionally clamps it, e.g. around a fragile GRU.

    Args:
        nan: value that replaces NaN.
        posinf: value that replaces +Inf; default: the clamp's upper bound, else the dtype's maximum.
        neginf: value that replaces −Inf; default: the clamp's lower bound, else the dtype's minimum.
        clamp: None, a bound c (clamp to [−c, c]) or a pair (low, high).
    """

    def __init__(self, nan: float = 0.0, posinf=None, neginf=None, clamp=None, **kwargs):
        super().__init__(**kwargs)
        if clamp is not None and not isinstance(clamp, (tuple, list)):
            if not clamp > 0:
                raise ValueError(
                    f"clamp={clamp!r} is not allowed; use a positive bound or a (low, high) pair"
                )
            clamp = (-float(clamp), float(clamp))
        if clamp is not None and not clamp[0] < clamp[1]:
            raise ValueError(f"clamp={tuple(clamp)!r} is not allowed; low must be below high")
        self.nan = nan
        self.clamp = None if clamp is None else (float(clamp[0]), float(clamp[1]))
        self.posinf = posinf if posinf is not None or self.clamp is None else self.clamp[1]
        self.neginf = neginf if neginf is not None or self.clamp is None else self.clamp[0]
        self.supports_masking = True

    def call(self, inputs):
        outputs = keras.ops.nan_to_num(inputs, nan=self.nan, posinf=self.posinf, neginf=self.neginf)
        if self.clamp is not None:
            outputs = keras.ops.clip(outputs, self.clamp[0], self.clamp[1])
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(nan=self.nan, posinf=self.posinf, neginf=self.neginf, clamp=self.clamp)
        return config


@dataclasses.dataclass(frozen=True)
class Problem:
    """One kind of bad value found in a named tensor.

    Attributes:
        name: the tensor's name.
        kind: "nan", "inf" or "extreme" (finite but larger in magnitude than the threshold).
        count: how many entries.
        total: entries in the tensor.
    """

    name: str
    kind: str
    count: int
    total: int

    def __str__(self):
        return f"{self.name}: {self.count} of {self.total} entries {self.kind}"


def check_finite(tensors_by_name: dict, extreme: float | None = 1000.0) -> list[Problem]:
    """Finds NaN, Inf and extreme values (|x| > extreme) in tensors or arrays, by name.

    Args:
        tensors_by_name: name → tensor, variable or array.
        extreme: magnitude above which a finite value is reported; None = off.

    Returns:
        The problems found, in the order of the names and of nan, inf, extreme; empty when all is well.
    """
    problems = []
    for name, tensor in tensors_by_name.items():
        values = np.asarray(keras.ops.convert_to_numpy(tensor))
        if not np.issubdtype(values.dtype, np.inexact):
            continue
        finite = np.isfinite(values)
        counts = {"nan": int(np.isnan(values).sum()), "inf": int(np.isinf(values).sum())}
        if extreme is not None:
            counts["extreme"] = int((np.abs(np.where(finite, values, 0)) > extreme).sum())
        for kind, count in counts.items():
            if count:
                problems.append(Problem(name, kind, count, int(values.size)))
    return problems
