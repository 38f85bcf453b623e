"""A trained generator on disk: saved the Keras way (config + .weights.h5) and loaded by load_run."""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from qgan.models.classical_generator import ClassicalGenerator, ClassicalMixtureGenerator
from qgan.runtime.errors import first_line
from qgan.runtime.files import save_atomic, write_atomic
from qgan.training.config import VALUES_BEFORE_FLAGS, TrainConfig
from qgan.training.readers import (
    CONFIG_FILE,
    OLD_WEIGHTS_FILE,
    QUANTUM_GENERATOR_NAME,
    WEIGHTS_FILE,
    RunFolderError,
    read_run_config,
    saved_generator_config,
)


def generator_classes(config: dict) -> dict:
    """The classes a generator.json may name, as custom objects for Keras' deserialisation.

    Given to Keras, they are found in a fresh process too. The quantum generator (and Strawberry
    Fields with it) is imported only for a generator.json that names it (saved_generator_config
    has checked that its registered name is one of readers.GENERATOR_NAMES).
    """
    classes = {cls.__name__: cls for cls in (ClassicalGenerator, ClassicalMixtureGenerator)}
    if config["registered_name"] == QUANTUM_GENERATOR_NAME:
        from qgan.models.generator import QuantumGenerator

        classes[QuantumGenerator.__name__] = QuantumGenerator
    return classes


def save_generator(generator, run_dir: str) -> None:
    """Writes the generator's Keras config (generator.json) and weights (generator.weights.h5)."""
    config = keras.saving.serialize_keras_object(generator)
    write_atomic(os.path.join(run_dir, CONFIG_FILE), json.dumps(config, indent=2) + "\n")
    save_atomic(os.path.join(run_dir, WEIGHTS_FILE), lambda path: keras.saving.save_weights(generator, path))


def load_run(run_dir: str, detector_efficiency: float | None = None, dark_counts: float | None = None):
    """The trained generator of a run folder, ready to `generate(n)`.

    `generate(n, chunk_size=min(250, n), seed=[seed, step], outcomes=True)` with the run's seed
    and final step reproduces the run's own final evaluation (samples.npy, outcomes.npy).

    Args:
        run_dir: a folder written by qgan.training.train.train (or the training script).
        detector_efficiency: with a heralded circuit, read it out by detectors of this efficiency
            instead of those it was trained with (None keeps them).
        dark_counts: likewise, the detectors' mean dark counts (None keeps them).

    Returns:
        The generator (a registered Keras layer: QuantumGenerator, ClassicalGenerator or
        ClassicalMixtureGenerator) with the trained weights.

    Raises:
        RunFolderError: a folder without a finished generator, or whose generator files are damaged.
    """
    config = saved_generator_config(run_dir)
    overrides = {
        key: value
        for key, value in (("detector_efficiency", detector_efficiency), ("dark_counts", dark_counts))
        if value is not None
    }
    if overrides:
        settings = config.get("config", {}) if config is not None else {}
        if config is None or settings.get("readout") != "heralded":
            raise RunFolderError(
                f"{run_dir!r}: its generator has no detectors, so detector settings do not apply"
            )
        config = {**config, "config": {**settings, **overrides}}
    if config is None:
        return _load_npz_run(run_dir)
    try:
        generator = keras.saving.deserialize_keras_object(config, custom_objects=generator_classes(config))
        keras.saving.load_weights(generator, os.path.join(run_dir, WEIGHTS_FILE))
    except (TypeError, ValueError, KeyError, OSError) as error:
        raise RunFolderError(
            f"{run_dir!r}: its generator ({CONFIG_FILE}, {WEIGHTS_FILE}) cannot be loaded "
            f"({first_line(error)})"
        ) from None
    return generator


def _load_npz_run(run_dir: str):
    from qgan.training.builders import build_generator

    saved = read_run_config(run_dir)
    values = {**VALUES_BEFORE_FLAGS, **saved, "resume": False}
    values["critic_units"] = tuple(values["critic_units"])
    known = TrainConfig.__dataclass_fields__
    generator = build_generator(TrainConfig(**{key: value for key, value in values.items() if key in known}))
    with np.load(os.path.join(run_dir, OLD_WEIGHTS_FILE)) as weights:
        for variable in generator.weights:
            variable.assign(weights[variable.path.replace("/", ".")])
    return generator
