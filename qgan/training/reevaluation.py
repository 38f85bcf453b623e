"""A finished run's final evaluation repeated with its circuit read out by other detectors."""

from __future__ import annotations

import dataclasses

from qgan.evaluation.fidelity import FidelityMeter
from qgan.training.builders import make_target
from qgan.training.callbacks import evaluate
from qgan.training.config import VALUES_BEFORE_FLAGS, TrainConfig
from qgan.training.readers import read_run_config
from qgan.training.saved_generator import load_run


def run_config(run_dir: str) -> TrainConfig:
    """The TrainConfig a run folder was trained with (flags it predates read as before they existed)."""
    saved = {**VALUES_BEFORE_FLAGS, **read_run_config(run_dir), "resume": False}
    saved["critic_units"] = tuple(saved["critic_units"])
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in saved.items() if key in known})


def final_step(run_dir: str) -> int:
    """The step of the run's final evaluation (from coverage.json)."""
    import json
    import os

    with open(os.path.join(run_dir, "coverage.json"), encoding="utf-8") as handle:
        return int(json.load(handle)["step"])


def evaluate_under_detector(run_dir: str, detector_efficiency: float, dark_counts: float) -> dict:
    """The run's final evaluation (same samples count, seed and step) under another detector model.

    Args:
        run_dir: a finished run folder of a heralded circuit.
        detector_efficiency: the detectors' efficiency η to read the trained circuit out with.
        dark_counts: the detectors' mean dark counts ν.

    Returns:
        modes, high_quality, kl, the fidelity summary (std ratio median, offset median, w1 ratio),
        the trace mean, and the detector settings.
    """
    config = run_config(run_dir)
    target = make_target(config)
    generator = load_run(run_dir, detector_efficiency, dark_counts)
    meter = FidelityMeter(target, config.eval_samples, config.seed)
    result = evaluate(
        generator, target, config.eval_samples, seed=[config.seed, final_step(run_dir)], meter=meter
    )
    row = {
        "detector_efficiency": detector_efficiency,
        "dark_counts": dark_counts,
        "modes": result.coverage.modes_captured,
        "high_quality": result.coverage.high_quality_fraction,
        "kl": result.coverage.kl_uniform,
        "trace_mean": float(result.trace.mean()),
    }
    row.update(result.fidelity.summary() if result.fidelity is not None else {})
    return row


def detector_study(study_dir: str, efficiencies, dark_counts_values, log=print) -> list[dict]:
    """Each seed of a detector study's ideal setting (η = 1, ν = 0) evaluated under every detector.

    Args:
        study_dir: a qgan-tune study folder whose grid searched detector_efficiency and dark_counts.
        efficiencies: the efficiencies η to evaluate.
        dark_counts_values: the dark counts ν to evaluate.
        log: receives one line per evaluation.

    Returns:
        One row per (seed, η, ν): evaluate_under_detector's numbers and the seed.
    """
    import csv
    import glob
    import os

    with open(os.path.join(study_dir, "summary.csv"), encoding="utf-8") as handle:
        trials = list(csv.DictReader(handle))
    ideal = [
        trial
        for trial in trials
        if float(trial["detector_efficiency"]) == 1.0
        and float(trial["dark_counts"]) == 0.0
        and trial["state"] == "completed"
    ]
    if not ideal:
        raise ValueError(f"{study_dir!r} holds no completed trial with η = 1 and ν = 0")
    rows = []
    runs = glob.glob(os.path.join(study_dir, ideal[0]["setting"], "seed-*"))
    for run_dir in sorted(path for path in runs if os.path.isdir(path)):
        seed = int(run_dir.rsplit("seed-", 1)[1])
        for efficiency in efficiencies:
            for dark_counts in dark_counts_values:
                row = {"seed": seed, **evaluate_under_detector(run_dir, efficiency, dark_counts)}
                log(
                    f"seed {seed}, η {efficiency:g}, ν {dark_counts:g}: {row['modes']} modes, "
                    f"{100 * row['high_quality']:.1f}% high quality, KL {row['kl']:.3f}"
                )
                rows.append(row)
    return rows


def detector_curves(rows, trained, efficiencies, dark_counts_values) -> dict:
    """The high-quality share over η, per ν: trained under each detector, and trained ideal.

    Args:
        rows: detector_study's rows (the ideal-trained runs under each detector).
        trained: the study's summary.csv rows of completed trials.
        efficiencies: the efficiencies η.
        dark_counts_values: the dark counts ν.

    Returns:
        {label: [(η, median high-quality fraction), …]}, labels "trained under the detector, ν …"
        and "trained ideal, ν …".
    """
    import statistics

    curves = {}
    for nu in dark_counts_values:
        curves[f"trained under the detector, ν {nu:g}"] = [
            (float(row["detector_efficiency"]), float(row["hq_median"]))
            for row in trained
            if float(row["dark_counts"]) == nu
        ]
        curves[f"trained ideal, ν {nu:g}"] = [
            (
                eta,
                statistics.median(
                    row["high_quality"]
                    for row in rows
                    if row["detector_efficiency"] == eta and row["dark_counts"] == nu
                ),
            )
            for eta in efficiencies
        ]
    return curves
