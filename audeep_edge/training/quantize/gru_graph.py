"""The t-RAE GRU encoder rewritten for inference: same weights, same outputs, a faster and int8-friendly graph.

Keras' GRU (``reset_after=False``, TF1's variant, as auDeep) computes per step

    z = σ(x·Wz + h·Uz + bz)   r = σ(x·Wr + h·Ur + br)   c = tanh(x·Wh + (r∘h)·Uh + bh)   h' = z∘h + (1−z)∘c

This graph computes exactly that, rearranged for the deployed model:

- the input projections ``x·W + b`` of all T frames are one matrix product per layer, out of the recurrence;
- the two gate products ``h·[Uz|Ur]`` are one FULLY_CONNECTED per step;
- the update is written ``h' = h + u∘(c − h)`` with ``u = 1 − z = σ(−(…))``: the sign is folded into the
  weights. In full-int8 TFLite a sigmoid's output has the fixed scale 1/256 over [0, 255/256], so Keras' ``z``
  can never reach 1 and every step forgets ≥ 0.4 % of the state (0.996¹²⁴ ≈ 0.6 over a 5 s window);
  ``u`` can be exactly 0, so the state is kept as the float model keeps it.

Measured on the ESC-10 −60 dB run (docs/quantize.md): int8 embedding cosine vs Keras 0.970 → 0.994 (min
0.79 → 0.95), accuracy vs float −2.75 → −0.25 points over 5 folds; per-window latency 11.7 → 8.0 ms (int8,
XNNPACK).
The graph is unrolled by construction (one subgraph: what full-int8 calibration and the Edge TPU need).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def supports(autoencoder) -> bool:
    """Whether :func:`encoder_model` can rewrite this autoencoder's encoder (a t-RAE with GRU cells)."""
    return autoencoder.ae_config.model_type == "t-rae" and autoencoder.encoder.arch.cell == "GRU"


class GRUStack(keras.layers.Layer):
    """One direction of the encoder: ``L`` GRU layers, inputs ``(1, T, F)`` -> final states ``[(1, U)] * L``.

    Parameters
    ----------
    layers : the trained ``keras.layers.GRU`` layers, first to last (their weights are copied).
    reverse : read the frames from last to first (the backward stack of a bidirectional encoder).
    sequences : also return each layer's state after every frame, ``[(T, U)] * L`` in time order, after the finals.
    """

    def __init__(self, layers: list, *, reverse: bool = False, sequences: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.reverse = reverse
        self.sequences = sequences
        self.units = layers[0].units
        self.cells = [self._copy(index, layer) for index, layer in enumerate(layers)]

    def _copy(self, index: int, layer) -> dict:
        kernel, recurrent, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
        u = self.units
        kernel, recurrent, bias = kernel.copy(), recurrent.copy(), bias.copy()
        for w in (kernel, recurrent, bias):       # z -> 1 - z = σ(-(…)): negate the update gate's weights
            w[..., :u] *= -1.0
        def constant(name, value):
            return self.add_weight(shape=value.shape, name=f"l{index}_{name}", trainable=False,
                                   initializer=keras.initializers.Constant(value))
        return {"w_gates": constant("w_gates", kernel[:, :2 * u]), "b_gates": constant("b_gates", bias[:2 * u]),
                "w_cand": constant("w_cand", kernel[:, 2 * u:]), "b_cand": constant("b_cand", bias[2 * u:]),
                "u_gates": constant("u_gates", recurrent[:, :2 * u]), "u_cand": constant("u_cand", recurrent[:, 2 * u:])}

    def call(self, x):
        # batch 1, frames as rows: 2-D slices that XNNPACK delegates (a 3-D slice that drops its time axis
        # is left to the plain kernels, one delegate partition per step: 2x slower)
        seq = ops.flip(x[0], axis=0) if self.reverse else x[0]
        steps, u = x.shape[1], self.units
        finals, sequences = [], []
        for index, cell in enumerate(self.cells):
            gates_in = ops.matmul(seq, cell["w_gates"]) + cell["b_gates"]      # (T, 2U): all frames at once
            cand_in = ops.matmul(seq, cell["w_cand"]) + cell["b_cand"]         # (T, U)
            h, outputs = None, []
            for t in range(steps):
                if h is None:                                                  # h = 0: no recurrent products
                    keep = ops.sigmoid(gates_in[t:t + 1, :u])
                    h = keep * ops.tanh(cand_in[t:t + 1])
                else:
                    gates = ops.sigmoid(gates_in[t:t + 1] + ops.matmul(h, cell["u_gates"]))
                    keep, reset = gates[:, :u], gates[:, u:]
                    candidate = ops.tanh(cand_in[t:t + 1] + ops.matmul(reset * h, cell["u_cand"]))
                    h = h + keep * (candidate - h)
                if index < len(self.cells) - 1 or self.sequences:
                    outputs.append(h)
            if outputs:
                seq = ops.concatenate(outputs, axis=0)
                sequences.append(ops.flip(seq, axis=0) if self.reverse else seq)
            finals.append(h)
        return finals + sequences if self.sequences else finals


def encoder_model(autoencoder) -> keras.Model:
    """The t-RAE's encoder as an inference graph: ``spectrogram (1, T, F)`` -> ``{"embedding": (1, D)}``.

    Same outputs as :func:`audeep_edge.training.autoencoders.encoder_model` (max difference ~1e-6 in
    float32) for one window at a time (the deployed batch); state layout as auDeep's (per layer: forward,
    backward), then the tanh Dense.
    """
    x, outputs = _inference_outputs(autoencoder, ("final",))
    return keras.Model(x, {"embedding": outputs["final"]}, name="t_rae_encoder_inference")


def pooled_encoder_model(autoencoder, pooling: tuple[str, ...]) -> keras.Model:
    """:func:`audeep_edge.training.autoencoders.pooled_encoder_model` as an inference graph: ``spectrogram (1, T, F)``
    -> ``{name: (1, D)}``, the recurrence run once for every output."""
    x, outputs = _inference_outputs(autoencoder, pooling)
    return keras.Model(x, outputs, name="t_rae_pooled_encoder_inference")


def _inference_outputs(autoencoder, pooling: tuple[str, ...]):
    """The input ``(1, T, F)`` and ``{name: (1, D)}`` for each name of ``pooling`` (``final``: the representation
    of the final states; ``mean``, ``max``: of every step's, pooled over the window)."""
    from audeep_edge.training.autoencoders.models import pool_steps

    encoder, arch = autoencoder.encoder, autoencoder.encoder.arch
    layers, pooled = arch.num_layers, any(name != "final" for name in pooling)
    x = keras.Input(autoencoder.spectrogram_shape, batch_size=1, name="spectrogram")
    per_direction = [GRUStack(encoder.rnns[d * layers:(d + 1) * layers], reverse=d == 1, sequences=pooled,
                              name=f"{'fw' if d == 0 else 'bw'}_stack")(x) for d in range(arch.directions)]
    outputs = {}
    if pooled:
        steps = [per_direction[d][layers + layer] for layer in range(layers) for d in range(arch.directions)]
        outputs = pool_steps(autoencoder.representation(ops.concatenate(steps, axis=-1)), pooling, axis=0)
        outputs = {name: ops.expand_dims(value, 0) for name, value in outputs.items()}
    if "final" in pooling:
        finals = [per_direction[d][layer] for layer in range(layers) for d in range(arch.directions)]
        outputs["final"] = autoencoder.representation(ops.concatenate(finals, axis=-1))
    return x, {name: outputs[name] for name in pooling}
