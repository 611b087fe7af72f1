"""A t-RAE trained for its pooled representation: auDeep's reconstruction plus agreement between two views.

The input is a batch of view pairs ``(B, 2, T, F)`` (``training.views.view_pairs``). The encoder reads both
views; auDeep's decoder reconstructs the first from its final representation (RMSE, as auDeep), and the mean and
max over steps of ``tanh(W·s_t + b)`` of each view (what ``pooled_encoder_model`` exports), through a small
projection, are pulled towards the other view of the same window and away from the other windows of the batch
(NT-Xent, SimCLR's loss). The projection is dropped after training; the t-RAE keeps auDeep's weights layout.
"""

from __future__ import annotations

import keras
from keras import ops

from audeep_edge.errors import ConfigError
from audeep_edge.training.autoencoders.models import TimeAutoencoder, rmse


def nt_xent(projections, temperature: float):
    """SimCLR's loss for ``projections`` ``(2B, D)``: rows ``i`` and ``i + B`` are two views of one window."""
    p = projections / ops.sqrt(ops.sum(ops.square(projections), axis=-1, keepdims=True) + 1e-8)
    count = ops.shape(p)[0]
    half = count // 2
    similarity = ops.matmul(p, ops.transpose(p)) / temperature - 1e9 * ops.eye(count)
    partner = ops.concatenate([ops.arange(half, count), ops.arange(0, half)])
    positive = ops.take_along_axis(similarity, partner[:, None], axis=1)[:, 0]
    return ops.mean(ops.logsumexp(similarity, axis=1) - positive)


class AgreementAutoencoder(keras.Model):
    """``autoencoder`` (a forward GRU t-RAE) with a projection, trained on ``rmse + weight · nt_xent``."""

    def __init__(self, autoencoder: TimeAutoencoder, *, weight: float = 0.05, temperature: float = 0.1,
                 projection: tuple[int, int] = (512, 128), **kwargs):
        arch = getattr(autoencoder.ae_config, "encoder", None)
        if not isinstance(autoencoder, TimeAutoencoder) or arch.cell != "GRU" or arch.bidirectional:
            raise ConfigError("agreement training needs a t-RAE with a forward-only GRU encoder")
        super().__init__(name="t_rae_agreement", **kwargs)
        self.autoencoder, self.weight, self.temperature = autoencoder, weight, temperature
        self.projection = keras.Sequential([keras.layers.Dense(projection[0], activation="relu"),
                                            keras.layers.Dense(projection[1])], name="projection")
        self.projection.build((None, 2 * autoencoder.ae_config.representation_size()))
        self.reconstruction_loss = keras.metrics.Mean(name="reconstruction")
        self.agreement_loss = keras.metrics.Mean(name="agreement")
        self.built = True                                       # every layer is built above

    def call(self, pairs, training=False):
        """``pairs (B, 2, T, F)`` -> (reconstruction of the first views ``(B, T, F)``, projections ``(2B, P)``)."""
        ae, count = self.autoencoder, ops.shape(pairs)[0]
        first = pairs[:, 0]
        steps = ae.representation(ae.encoder.step_states(ops.concatenate([first, pairs[:, 1]], axis=0),
                                                         training=training))
        reconstruction = ae.decode(steps[:count, -1], ae.targets(first), training=training)
        pooled = ops.concatenate([ops.mean(steps, axis=1), ops.max(steps, axis=1)], axis=-1)
        return reconstruction, self.projection(pooled)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction, projections = y_pred
        error = rmse(self.autoencoder.targets(x[:, 0]), reconstruction)
        agreement = nt_xent(projections, self.temperature)
        self.reconstruction_loss.update_state(error)
        self.agreement_loss.update_state(agreement)
        return error + self.weight * agreement
