"""qgan: continuous-variable quantum GANs on Keras/TensorFlow that train without blowing up."""

__version__ = "0.1.0"
