"""audeep-edge: unsupervised recurrent-autoencoder audio representations on edge devices."""

__version__ = "0.1.0"
