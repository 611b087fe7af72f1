"""auDeep's three autoencoders (t-RAE, f-RAE, ft-RAE) as Keras 3 models, and the stand-alone encoder.

All models take spectrograms ``x`` of shape ``(B, T, F)`` in [-1, 1] and reconstruct auDeep's targets
(``x`` reversed in time, in frequency, or both) under an RMSE loss. Decoders never see the frame they
reconstruct: auDeep's inputs let them (docs/audeep.md), which gave a worse representation.
"""

from __future__ import annotations

import keras
from keras import ops

from audeep_edge.training.autoencoders.config import (AutoencoderConfig, FrequencyAutoencoderConfig,
                                                      FrequencyTimeAutoencoderConfig, TimeAutoencoderConfig)
from audeep_edge.training.autoencoders.rnn import RecurrentDecoder, RecurrentEncoder, tanh_dense


def shift_right(seq):
    """``(B, S, D)`` delayed by one step: zeros first, the last entry dropped."""
    return ops.pad(seq[:, :-1], ((0, 0), (1, 0), (0, 0)))


def frequency_windows(x, num_windows: int, step: int, width: int):
    """Frames ``(B, T, F)`` as sequences of frequency windows ``(B·T, num_windows, width)`` (docs/audeep.md#f-rae)."""
    windows = ops.stack([x[:, :, k * step:k * step + width] for k in range(num_windows)], axis=2)
    return ops.reshape(windows, (-1, num_windows, width))


def zero_windows(codes, num_windows: int, width: int):
    """Zero decoder inputs ``(B', num_windows, width)`` for ``codes`` ``(B', D)``: the frequency decoders are
    conditioned on their state only."""
    return ops.zeros((ops.shape(codes)[0], num_windows, width), codes.dtype)


def rmse(targets, reconstruction):
    """auDeep's loss: one root-mean-square error over all elements of the batch."""
    return ops.sqrt(ops.mean(ops.square(targets - reconstruction)))


class Autoencoder(keras.Model):
    """Common part: configuration, input shape and the RMSE loss against :meth:`targets`."""

    def __init__(self, config: AutoencoderConfig, input_shape: tuple[int, int], **kwargs):
        config.check_input_shape(tuple(input_shape))
        super().__init__(name=config.model_type.replace("-", "_"), **kwargs)
        self.ae_config = config
        self.spectrogram_shape = tuple(int(n) for n in input_shape)

    def targets(self, x):
        """What the decoder reconstructs from ``x``, ``(B, T, F)``."""
        raise NotImplementedError

    def encode(self, x, training=False):
        """The representation ``generate`` writes: ``(B, D)`` (f-RAE: ``(B, T, D)``)."""
        raise NotImplementedError

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return rmse(self.targets(x), y_pred)


class TimeAutoencoder(Autoencoder):
    """t-RAE (docs/audeep.md#t-rae): the representation is ``tanh(W·s_enc + b)`` of the decoder's state size."""

    def __init__(self, config: TimeAutoencoderConfig, input_shape, *, unroll: bool = False, **kwargs):
        super().__init__(config, input_shape, **kwargs)
        self.encoder = RecurrentEncoder(config.encoder, keep_prob=config.keep_prob, noise=config.encoder_noise,
                                        unroll=unroll, name="encoder")
        self.representation = tanh_dense(config.representation_size(), name="representation")
        self.decoder = RecurrentDecoder(config.decoder, self.spectrogram_shape[1], keep_prob=config.keep_prob,
                                        feed_previous_prob=config.feed_previous_prob, name="decoder")

    def build(self, input_shape):
        config, (num_frames, num_bands) = self.ae_config, self.spectrogram_shape
        self.encoder.build((None, num_frames, num_bands))
        self.representation.build((None, config.encoder.state_size))
        self.decoder.build((None, config.representation_size()), (None, num_frames, num_bands))

    def targets(self, x):
        return ops.flip(x, axis=1)

    def encode(self, x, training=False):
        return self.representation(self.encoder(x, training=training))

    def decode(self, representation, targets, training=False):
        """Reconstruction ``(B, T, F)`` of ``targets`` from ``representation`` ``(B, D)`` (teacher forcing)."""
        # The decoder input at step t is target t-1 (auDeep's feed-previous decoder shifted twice, to t-2).
        return self.decoder(representation, shift_right(targets), training=training)

    def call(self, x, training=False):
        return self.decode(self.encode(x, training=training), self.targets(x), training=training)


class FrequencyAutoencoder(Autoencoder):
    """f-RAE (docs/audeep.md#f-rae): every frame is a sequence of frequency windows; one vector per frame.

    The decoder is conditioned on the representation only (zero inputs, or its own previous output with
    ``feed_previous_prob``); auDeep teacher-forced it with the windows of the very frame it reconstructs.
    """

    def __init__(self, config: FrequencyAutoencoderConfig, input_shape, *, unroll: bool = False, **kwargs):
        super().__init__(config, input_shape, **kwargs)
        num_bands = self.spectrogram_shape[1]
        self.num_windows, self.window_step = config.window_layout(num_bands)
        self.encoder = RecurrentEncoder(config.encoder, keep_prob=config.keep_prob, noise=config.encoder_noise,
                                        unroll=unroll, name="encoder")
        self.representation = tanh_dense(config.representation_size(), name="representation")
        self.decoder = RecurrentDecoder(config.decoder, config.freq_window_width, keep_prob=config.keep_prob,
                                        feed_previous_prob=config.feed_previous_prob, name="decoder")
        self.reconstruction = tanh_dense(num_bands, name="reconstruction")

    def build(self, input_shape):
        config, num_frames = self.ae_config, self.spectrogram_shape[0]
        windows = (None, self.num_windows, config.freq_window_width)
        self.encoder.build(windows)
        self.representation.build((None, config.encoder.state_size))
        self.decoder.build((None, config.representation_size()), windows)
        self.reconstruction.build((None, num_frames, self.num_windows * config.freq_window_width))

    def targets(self, x):
        return ops.flip(x, axis=2)

    def _windows(self, x):
        return frequency_windows(x, self.num_windows, self.window_step, self.ae_config.freq_window_width)

    def _frame_codes(self, windows, training):
        return self.representation(self.encoder(windows, training=training))

    def encode(self, x, training=False):
        codes = self._frame_codes(self._windows(x), training)
        return ops.reshape(codes, (-1, self.spectrogram_shape[0], self.ae_config.representation_size()))

    def decode(self, codes, training=False):
        """Reconstruction ``(B, T, F)`` from frame codes ``(B·T, D)``."""
        teacher = zero_windows(codes, self.num_windows, self.ae_config.freq_window_width)
        out = self.decoder(codes, teacher, training=training)
        num_frames = self.spectrogram_shape[0]
        return self.reconstruction(ops.reshape(out, (-1, num_frames, self.num_windows * out.shape[-1])))

    def call(self, x, training=False):
        return self.decode(self._frame_codes(self._windows(x), training), training=training)


class FrequencyTimeAutoencoder(Autoencoder):
    """ft-RAE (docs/audeep.md#ft-rae): a frequency encoder per frame feeds a time encoder; one vector per spectrogram.

    The time decoder reads the code of target frame t-1 at step t; the frequency decoder is conditioned on
    its state only (see :class:`FrequencyAutoencoder`).
    """

    def __init__(self, config: FrequencyTimeAutoencoderConfig, input_shape, *, unroll: bool = False, **kwargs):
        super().__init__(config, input_shape, **kwargs)
        num_bands = self.spectrogram_shape[1]
        self.num_windows, self.window_step = config.window_layout(num_bands)
        code_size = config.f_encoder.state_size
        keep = config.keep_prob
        self.f_encoder = RecurrentEncoder(config.f_encoder, keep_prob=keep, noise=config.f_encoder_noise,
                                          unroll=unroll, name="f_encoder")
        self.t_encoder = RecurrentEncoder(config.t_encoder, keep_prob=keep, noise=config.t_encoder_noise,
                                          unroll=unroll, name="t_encoder")
        self.representation = tanh_dense(config.representation_size(), name="representation")
        self.t_decoder = RecurrentDecoder(config.t_decoder, code_size, keep_prob=keep,
                                          feed_previous_prob=config.t_feed_previous_prob, name="t_decoder")
        self.f_decoder_state = tanh_dense(config.f_decoder.state_size, name="f_decoder_state")
        self.f_decoder = RecurrentDecoder(config.f_decoder, config.freq_window_width, keep_prob=keep,
                                          feed_previous_prob=config.f_feed_previous_prob, name="f_decoder")
        self.reconstruction = tanh_dense(num_bands, name="reconstruction")

    def build(self, input_shape):
        config, num_frames = self.ae_config, self.spectrogram_shape[0]
        windows = (None, self.num_windows, config.freq_window_width)
        code_size = config.f_encoder.state_size
        self.f_encoder.build(windows)
        self.t_encoder.build((None, num_frames, code_size))
        self.representation.build((None, config.t_encoder.state_size))
        self.t_decoder.build((None, config.representation_size()), (None, num_frames, code_size))
        self.f_decoder_state.build((None, code_size))
        self.f_decoder.build((None, config.f_decoder.state_size), windows)
        self.reconstruction.build((None, num_frames, self.num_windows * config.freq_window_width))

    def targets(self, x):
        return ops.flip(x, axis=(1, 2))

    def _windows(self, x):
        return frequency_windows(x, self.num_windows, self.window_step, self.ae_config.freq_window_width)

    def _frame_codes(self, x, training):
        codes = self.f_encoder(self._windows(x), training=training)
        return ops.reshape(codes, (-1, self.spectrogram_shape[0], self.ae_config.f_encoder.state_size))

    def encode(self, x, training=False):
        return self.representation(self.t_encoder(self._frame_codes(x, training), training=training))

    def call(self, x, training=False):
        codes = self._frame_codes(x, training)
        z = self.representation(self.t_encoder(codes, training=training))
        t_out = self.t_decoder(z, shift_right(ops.flip(codes, axis=1)), training=training)
        f_state = self.f_decoder_state(ops.reshape(t_out, (-1, t_out.shape[-1])))
        f_teacher = zero_windows(f_state, self.num_windows, self.ae_config.freq_window_width)
        out = self.f_decoder(f_state, f_teacher, training=training)
        num_frames = self.spectrogram_shape[0]
        return self.reconstruction(ops.reshape(out, (-1, num_frames, self.num_windows * out.shape[-1])))


MODELS = {"t-rae": TimeAutoencoder, "f-rae": FrequencyAutoencoder, "ft-rae": FrequencyTimeAutoencoder}


def build_autoencoder(config: AutoencoderConfig, input_shape: tuple[int, int], *,
                      unroll: bool = False) -> Autoencoder:
    """Create and build (all weights allocated) the autoencoder of ``config`` for ``(T, F)`` spectrograms.

    ``unroll=True`` unrolls the encoder's recurrent layers (same weights; needed for full-int8 TFLite).
    """
    model = MODELS[config.model_type](config, input_shape, unroll=unroll)
    model.build((None, *model.spectrogram_shape))    # creates the variables without running the model
    return model


def encoder_model(autoencoder: Autoencoder) -> keras.Model:
    """The encoder alone, sharing the autoencoder's weights, as a functional model.

    Input ``spectrogram`` ``(B, T, F)`` float32; output dict ``{"embedding": (B, D)}`` (f-RAE:
    ``(B, T, D)``). The graph holds the recurrent layers and the tanh Dense only (no noise, no dropout).
    """
    x = keras.Input(autoencoder.spectrogram_shape, name="spectrogram")
    name = f"{autoencoder.ae_config.model_type.replace('-', '_')}_encoder"
    return keras.Model(x, {"embedding": autoencoder.encode(x, training=False)}, name=name)


def pool_steps(steps, pooling: tuple[str, ...], axis: int) -> dict:
    """``steps``: the representation after every frame along ``axis`` -> ``{name: pooled}`` for the ``mean`` and
    ``max`` of ``pooling``."""
    pooled = {"mean": ops.mean, "max": ops.max}
    return {name: pooled[name](steps, axis=axis) for name in pooling if name != "final"}


def pooled_encoder_model(autoencoder: Autoencoder, pooling: tuple[str, ...]) -> keras.Model:
    """A t-RAE's encoder (GRU) summarised over the window: ``spectrogram (B, T, F)`` -> ``{name: (B, D)}``.

    ``final`` is :func:`encoder_model`'s embedding; ``mean`` and ``max`` pool the representation
    ``tanh(W·s_t + b)`` of the state after every frame ``t``. A short sound in a long window leaves little in the
    final state; the mean and maximum over the window keep it.
    """
    x = keras.Input(autoencoder.spectrogram_shape, name="spectrogram")
    outputs = pool_steps(autoencoder.representation(autoencoder.encoder.step_states(x)), pooling, axis=1)
    if "final" in pooling:
        outputs["final"] = autoencoder.encode(x, training=False)
    return keras.Model(x, {name: outputs[name] for name in pooling}, name="t_rae_pooled_encoder")
