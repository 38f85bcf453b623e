"""qgan: continuous-variable quantum GANs on Keras/TensorFlow that train without blowing up."""

import importlib

__version__ = "0.1.0"

# name → (module, attribute); each is imported on first use, so `import qgan` stays light
_PUBLIC = {
    "TrainConfig": ("qgan.training.config", "TrainConfig"),
    "train": ("qgan.training.train", "train"),
    "load_run": ("qgan.training.saved_generator", "load_run"),
    "train_main": ("qgan.training.cli", "main"),
    "sample_main": ("qgan.training.sample_cli", "main"),
    "export_main": ("qgan.training.export_cli", "main"),
    "tune_main": ("qgan.tune.cli", "main"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'qgan' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    return getattr(importlib.import_module(module), attribute)


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
