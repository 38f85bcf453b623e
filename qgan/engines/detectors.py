"""Photon detectors as POVMs diagonal in the Fock basis: lossy counting, dark counts, threshold clicks."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import numpy as np

KINDS = ("pnr", "threshold")


@dataclasses.dataclass(frozen=True)
class Detector:
    """One kind of detector on every ancilla, and its imperfections.

    A photon-number-resolving (pnr) detector of efficiency η is the ideal one after a loss channel
    of transmission η: n photons give k counts with probability C(n, k) η^k (1 − η)^(n − k). Dark
    counts add an independent Poisson count of mean ν. The count is truncated at the cutoff: the
    last outcome, cutoff − 1, stands for every count of cutoff − 1 or more, so each photon number's
    outcome probabilities sum to 1 and the outcomes' probabilities to the state's trace. (Only
    dark counts can reach beyond cutoff − 1; `beyond_cutoff` gives that share.) A threshold
    detector reports only no click, with probability (1 − η)^n e^(−ν) on n photons, or a click.

    Attributes:
        kind: "pnr" or "threshold".
        efficiency: η, 0 < η ≤ 1.
        dark_counts: ν ≥ 0, the mean dark counts per detection window.
    """

    kind: str = "pnr"
    efficiency: float = 1.0
    dark_counts: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown detector {self.kind!r}; allowed: {', '.join(KINDS)}")
        if not 0.0 < self.efficiency <= 1.0:
            raise ValueError(f"detector efficiency {self.efficiency!r} is not allowed; use 0 < η ≤ 1")
        if not (self.dark_counts >= 0.0 and math.isfinite(self.dark_counts)):
            raise ValueError(f"dark counts {self.dark_counts!r} are not allowed; use a finite ν ≥ 0")

    @property
    def ideal(self) -> bool:
        return self.efficiency == 1.0 and self.dark_counts == 0.0

    def outcomes(self, cutoff: int) -> int:
        """Outcomes of one detector: cutoff counts (pnr) or two (threshold)."""
        return cutoff if self.kind == "pnr" else 2


def count_probabilities(cutoff: int, efficiency: float, dark_counts: float) -> np.ndarray:
    """P(count m | n photons) of one lossy PNR detector with dark counts, (cutoff, cutoff), m truncated.

    Row n: the binomial count of the photons convolved with the Poisson dark count; column
    cutoff − 1 holds every count ≥ cutoff − 1. Each row sums to 1 (to rounding).
    """
    photons = np.arange(cutoff)
    lossy = np.zeros((cutoff, cutoff))
    for n in photons:
        for k in range(n + 1):
            lossy[n, k] = math.comb(n, k) * efficiency**k * (1.0 - efficiency) ** (n - k)
    if dark_counts == 0.0:
        return lossy
    dark = np.array([math.exp(-dark_counts) * dark_counts**d / math.factorial(d) for d in photons])
    counts = np.zeros((cutoff, cutoff))
    for k in photons:
        for d in photons:
            counts[:, min(k + d, cutoff - 1)] += lossy[:, k] * dark[d]
    # the dark counts beyond cutoff − 1 of the Poisson law's tail, which the loop above never reaches
    counts[:, cutoff - 1] += 1.0 - counts.sum(axis=1)
    return counts


def beyond_cutoff(cutoff: int, efficiency: float, dark_counts: float) -> np.ndarray:
    """Per photon number, the probability that the count exceeds cutoff − 1 (folded into the last outcome)."""
    photons = np.arange(cutoff)
    dark = np.array([math.exp(-dark_counts) * dark_counts**d / math.factorial(d) for d in photons])
    beyond = np.zeros(cutoff)
    for n in photons:
        for k in range(n + 1):
            binomial = math.comb(n, k) * efficiency**k * (1.0 - efficiency) ** (n - k)
            beyond[n] += binomial * (1.0 - dark[: cutoff - k].sum())
    return beyond


def click_probabilities(cutoff: int, efficiency: float, dark_counts: float) -> np.ndarray:
    """P(no click, click | n photons) of one threshold detector, (cutoff, 2)."""
    silent = (1.0 - efficiency) ** np.arange(cutoff) * math.exp(-dark_counts)
    return np.stack([silent, 1.0 - silent], axis=1)


@functools.cache
def detector_matrix(cutoff: int, ancillas: int, detector: Detector) -> np.ndarray:
    """P(outcome | photon-number pattern) of `ancillas` independent detectors, (cutoff^K, outcomes).

    Patterns are ordered as np.ndindex((cutoff,) * K), outcomes likewise over each detector's own
    outcomes (counts 0 … cutoff − 1, or no click / click), the first ancilla most significant. For
    an ideal pnr detector it is the identity; for an ideal threshold detector the 0/1 grouping of
    every pattern with photons into "click".
    """
    if detector.kind == "pnr":
        single = count_probabilities(cutoff, detector.efficiency, detector.dark_counts)
    else:
        single = click_probabilities(cutoff, detector.efficiency, detector.dark_counts)
    matrix = np.ones((1, 1))
    for _ in range(ancillas):
        matrix = np.kron(matrix, single)
    return matrix


def outcome_labels(cutoff: int, ancillas: int, detector: Detector) -> list[tuple[int, ...]]:
    """Each outcome's per-ancilla count (pnr) or click (threshold), in detector_matrix's column order."""
    return list(itertools.product(range(detector.outcomes(cutoff)), repeat=ancillas))
