"""qgan: continuous-variable quantum GANs on Keras/TensorFlow that train without blowing up."""

__version__ = "0.1.0"


def __getattr__(name):
    # load_run needs TensorFlow; importing it lazily keeps `import qgan` light
    if name == "load_run":
        from qgan.saved_generator import load_run

        return load_run
    raise AttributeError(f"module 'qgan' has no attribute {name!r}")
