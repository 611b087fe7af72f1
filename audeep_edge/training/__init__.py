"""Training side of audeep-edge (``[train]`` extra): Keras 3 autoencoders, learners and export.

Nothing is imported here, so ``import audeep_edge.training.<module>`` pulls only what that module needs
(the autoencoder code needs keras and numpy only; it runs on the JAX, TensorFlow and PyTorch backends).
"""
