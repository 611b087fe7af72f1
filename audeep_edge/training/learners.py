"""Classifiers on learned representations: auDeep's MLP as a Keras 3 model and a linear SVM
(docs/audeep.md#learners-and-evaluation).

Both learners take raw features ``(N, D)`` and class indices ``0..C-1``, standardise with the mean and
(population) standard deviation of their *training* data only, and predict class indices. The MLP keeps the
standardisation inside its Keras model as a fixed layer, so :attr:`MLP.head` maps raw representations to class
probabilities on its own (that model is what ``mlp train`` saves and ``quantize`` attaches to the encoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from audeep_edge.errors import ConfigError, DataError

#: Rows per call when the MLP predicts, to bound memory on large data sets.
PREDICT_BATCH = 4096


class Learner(Protocol):
    """What the evaluation needs from a classifier."""

    def fit(self, features: np.ndarray, labels: np.ndarray, num_classes: int, seed: int | None = None) -> "Learner":
        """Train from scratch on features ``(N, D)`` and class indices ``(N,)``; ``seed`` for new randomness."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class indices ``(N,)``."""


def check_training_data(features: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Features as float32 ``(N, D)`` and labels as int64 ``(N,)`` in ``0..num_classes-1``; DataError otherwise."""
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if features.ndim != 2:
        raise DataError(f"learners need one feature vector per instance, got features of shape {features.shape}; "
                        "run `generate` first or flatten with `fuse chunks`")
    if features.shape[0] == 0:
        raise DataError("the training set is empty")
    if labels.shape != (features.shape[0],):
        raise DataError(f"{labels.size} labels for {features.shape[0]} training instances")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(f"class indices must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    if not np.isfinite(features).all():
        raise DataError("the training features contain NaN or infinite values")
    return features, labels


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population standard deviation of ``features`` ``(N, D)``, as sklearn's StandardScaler.

    A constant feature gets scale 1 (not 0), so it maps to 0 instead of dividing by zero.
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    return scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)


@dataclass(frozen=True)
class MLPOptions:
    """auDeep's MLP settings (``mlp evaluate`` defaults of the JMLR scripts).

    relu_logits : apply auDeep's ReLU to the output logits [quirk]; off by default (see docs/evaluation.md).
    """

    num_layers: int = 2
    num_units: int = 150
    keep_prob: float = 0.6
    num_epochs: int = 400
    learning_rate: float = 0.001
    relu_logits: bool = False

    def __post_init__(self) -> None:
        if self.num_layers < 0:
            raise ConfigError(f"--num-layers must be >= 0, got {self.num_layers}")
        if self.num_units < 1:
            raise ConfigError(f"--num-units must be >= 1, got {self.num_units}")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ConfigError(f"--keep-prob must lie in (0, 1], got {self.keep_prob}")
        if self.num_epochs < 1:
            raise ConfigError(f"--num-epochs must be >= 1, got {self.num_epochs}")
        if not self.learning_rate > 0.0:
            raise ConfigError(f"--learning-rate must be > 0, got {self.learning_rate}")

    def to_dict(self) -> dict:
        return asdict(self)


def build_trainer(num_features: int, num_classes: int, options: MLPOptions):
    """auDeep's MLP on standardised features: ``num_layers`` × (ReLU dense, dropout), then the output dense.

    Returns a compiled keras.Model ``(B, D) -> (B, C)`` logits (Adam, sparse softmax cross-entropy).
    Its weights are set by :func:`reset_trainer` before each training.
    """
    import keras
    from keras import layers

    inputs = keras.Input((num_features,), name="standardised")
    x = inputs
    for i in range(options.num_layers):
        x = layers.Dense(options.num_units, activation="relu", name=f"hidden_{i + 1}")(x)
        if options.keep_prob < 1.0:
            x = layers.Dropout(1.0 - options.keep_prob, seed=0, name=f"dropout_{i + 1}")(x)
    logits = layers.Dense(num_classes, activation="relu" if options.relu_logits else None, name="logits")(x)
    trainer = keras.Model(inputs, logits, name="mlp")
    # epsilon 1e-8 as TF1's AdamOptimizer (auDeep), not Keras' 1e-7
    trainer.compile(optimizer=keras.optimizers.Adam(options.learning_rate, epsilon=1e-8),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return trainer


def reset_trainer(trainer, seed: int, learning_rate: float) -> None:
    """Fresh Glorot-uniform weights and biases (as auDeep), dropout masks from ``seed`` and a fresh Adam state.

    Re-using one compiled model this way saves the graph tracing of a new model (seconds) per fold.
    """
    import keras

    seeds = iter(np.random.SeedSequence(seed).generate_state(3 * len(trainer.layers)).tolist())
    for layer in trainer.layers:
        if isinstance(layer, keras.layers.Dense):
            for weights in (layer.kernel, layer.bias):
                weights.assign(keras.initializers.GlorotUniform(seed=next(seeds))(weights.shape))
        elif isinstance(layer, keras.layers.Dropout):
            layer.seed_generator.state.assign(np.array([next(seeds) >> 1, 0]))
    for variable in trainer.optimizer.variables:  # step counter, moments (and the learning rate, set below)
        variable.assign(np.zeros(variable.shape))
    trainer.optimizer.learning_rate = learning_rate


def build_head(trainer, mean: np.ndarray, scale: np.ndarray):
    """The deployable classifier: raw features ``(B, D)`` -> class probabilities ``(B, C)``.

    The training statistics sit in a fixed Normalization layer in front of copies of the trainer's dense
    layers (dropout is left out: it is the identity at inference).
    """
    import keras
    from keras import layers

    inputs = keras.Input((mean.size,), name="representation")
    x = layers.Normalization(mean=mean, variance=np.square(scale), name="standardise")(inputs)
    for layer in trainer.layers:
        if isinstance(layer, keras.layers.Dense):
            dense = layers.Dense(layer.units, activation=layer.activation, name=layer.name)
            x = dense(x)
            dense.set_weights(layer.get_weights())
    probabilities = layers.Softmax(name="probabilities")(x)
    return keras.Model(inputs, probabilities, name="head")


class MLP:
    """auDeep's MLP, trained full batch: each epoch is exactly one Adam step on the whole training set.

    Every :meth:`fit` starts from new weights (from ``seed``) and new standardisation statistics; the compiled
    training graph is kept between fits of the same shape. After a fit, :attr:`head` is a keras.Model
    ``(B, D)`` raw features -> ``(B, C)`` probabilities, independent of later fits.
    """

    def __init__(self, options: MLPOptions = MLPOptions(), seed: int = 0) -> None:
        self.options = options
        self.seed = int(seed)
        self.head = None
        self._trainer = None

    def fit(self, features: np.ndarray, labels: np.ndarray, num_classes: int, seed: int | None = None) -> "MLP":
        """Train on raw features ``(N, D)`` and class indices ``(N,)``; ``seed`` overrides the constructor's."""
        import keras

        features, labels = check_training_data(features, labels, num_classes)
        mean, scale = standardisation(features)
        shape = (features.shape[1], num_classes)
        if self._trainer is None or (self._trainer.input_shape[-1], self._trainer.output_shape[-1]) != shape:
            self._trainer = build_trainer(*shape, self.options)
        reset_trainer(self._trainer, self.seed if seed is None else int(seed), self.options.learning_rate)
        x = keras.ops.convert_to_tensor((features - mean) / scale)
        y = keras.ops.convert_to_tensor(labels)
        for _ in range(self.options.num_epochs):
            self._trainer.train_on_batch(x, y)
        self.head = build_head(self._trainer, mean, scale)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C)`` float32 of raw features ``(N, D)``, computed by :attr:`head`."""
        import keras

        if self.head is None:
            raise RuntimeError("MLP.predict_proba called before fit")
        features = np.asarray(features, dtype=np.float32)
        parts = [keras.ops.convert_to_numpy(self.head(features[i:i + PREDICT_BATCH], training=False))
                 for i in range(0, len(features), PREDICT_BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, self.head.output_shape[-1]), np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class indices ``(N,)``: argmax of the probabilities (ties -> lowest index)."""
        return np.argmax(self.predict_proba(features), axis=1)


class LinearSVM:
    """``sklearn.svm.LinearSVC(C=complexity)`` on standardised features, as auDeep's ``svm`` learner."""

    def __init__(self, complexity: float, seed: int = 0) -> None:
        if not complexity > 0.0:
            raise ConfigError(f"--complexity must be > 0, got {complexity}")
        self.complexity = float(complexity)
        self.seed = int(seed)
        self.pipeline = None

    def fit(self, features: np.ndarray, labels: np.ndarray, num_classes: int, seed: int | None = None) -> "LinearSVM":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        features, labels = check_training_data(features, labels, num_classes)
        self.pipeline = make_pipeline(StandardScaler(),
                                      LinearSVC(C=self.complexity,
                                                random_state=self.seed if seed is None else int(seed)))
        self.pipeline.fit(features, labels)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError("LinearSVM.predict called before fit")
        return self.pipeline.predict(np.asarray(features, dtype=np.float32)).astype(np.int64)
