"""Recurrent building blocks of auDeep's autoencoders, on ``keras.layers`` / ``keras.ops`` only.

They run unchanged on the TensorFlow, JAX and PyTorch backends. State vectors use auDeep's layout
(docs/audeep.md#recurrent-layers): concatenation over layers ``[layer 1, layer 2, …]``; inside a layer
``[forward, backward]``; inside a direction ``[c, h]`` for LSTM.

Dropout follows auDeep's ``DropoutWrapper``: on the input and on the output of every layer, with a fresh
mask at every time step, during training only. The states that leave the encoder are not dropped.

Initialisation is TF1's (docs/audeep.md#recurrent-layers), as auDeep trained: Glorot-uniform over each
cell's joint ``[x, h]`` kernel (:class:`JointGlorotUniform`), gate biases 1 (:class:`GRUGateBias`), and Glorot-uniform Dense biases
(:func:`tanh_dense`). Against Keras' defaults (orthogonal recurrent kernels, zero biases: 80.85 % fused, one
training) it gave the ESC-10 recipe 80.90–82.60 % fused over three seeds (mean 81.93 %); single settings
move by up to 3 points between seeds (docs/training.md).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from audeep_edge.training.autoencoders.config import RNNArchitecture


class GRUGateBias(keras.initializers.Initializer):
    """TF1 ``GRUCell`` bias: 1 for the update and reset gates, 0 for the candidate (shape ``(3U,)``)."""

    def __call__(self, shape, dtype=None):
        gates = 2 * (shape[0] // 3)
        return ops.concatenate([ops.ones((gates,), dtype=dtype), ops.zeros((shape[0] - gates,), dtype=dtype)])


class JointGlorotUniform(keras.initializers.Initializer):
    """TF1's RNN kernel initialisation, for one of the two parts Keras splits the kernel into.

    TF1's ``GRUCell`` multiplies ``[x, h]`` by a ``(D + U, 2U)`` gate kernel and a ``(D + U, U)`` candidate
    kernel, ``LSTMCell`` by one ``(D + U, 4U)`` kernel, each Glorot-uniform: limit ``sqrt(6 / (D + U +
    columns))``. Keras keeps an input part ``(D, ·)`` and a recurrent part ``(U, ·)``; both get the joint limits,
    block by block of columns.

    Parameters
    ----------
    joint_rows : D + U.
    blocks : column widths of TF1's kernels, in Keras' column order (GRU: ``(2U, U)``, LSTM: ``(4U,)``).
    """

    def __init__(self, joint_rows: int, blocks: tuple[int, ...]):
        self.joint_rows, self.blocks = joint_rows, tuple(blocks)

    def __call__(self, shape, dtype=None):
        parts = []
        for width in self.blocks:
            limit = math.sqrt(6.0 / (self.joint_rows + width))
            parts.append(keras.random.uniform((shape[0], width), -limit, limit, dtype=dtype))
        return ops.concatenate(parts, axis=-1)

    def get_config(self) -> dict:
        return {"joint_rows": self.joint_rows, "blocks": list(self.blocks)}


def use_tf1_kernels(cell: keras.layers.Layer, input_dim: int) -> None:
    """Give a GRU/LSTM cell :class:`JointGlorotUniform` kernels; call before it is built (``input_dim`` = D)."""
    units = cell.units
    blocks = (2 * units, units) if isinstance(cell, keras.layers.GRUCell) else (4 * units,)
    cell.kernel_initializer = cell.recurrent_initializer = JointGlorotUniform(input_dim + units, blocks)


def tanh_dense(units: int, *, name: str) -> keras.layers.Dense:
    """``tanh(x·W + b)`` with TF1's ``get_variable`` default for the bias too: Glorot-uniform, which for a
    vector of n is uniform in ``±sqrt(3 / n)`` (auDeep's ``ops.linear``)."""
    limit = math.sqrt(3.0 / units)
    return keras.layers.Dense(units, activation="tanh", name=name,
                              bias_initializer=keras.initializers.RandomUniform(-limit, limit))


def recurrent_layer(cell: str, units: int, *, name: str, go_backwards: bool = False, unroll: bool = False,
                    return_state: bool = True) -> keras.layers.Layer:
    """A GRU or LSTM layer over a whole sequence (returns the sequence, and the final states if asked).

    GRU uses TF1's variant (reset gate before the candidate matmul: ``reset_after=False``), as auDeep.
    """
    common = dict(return_sequences=True, return_state=return_state, go_backwards=go_backwards, unroll=unroll,
                  name=name)
    if cell == "GRU":
        return keras.layers.GRU(units, reset_after=False, bias_initializer=GRUGateBias(), **common)
    return keras.layers.LSTM(units, unit_forget_bias=True, **common)


def recurrent_cell(cell: str, units: int, *, name: str) -> keras.layers.Layer:
    """One step of a GRU or LSTM layer (same maths as :func:`recurrent_layer`)."""
    if cell == "GRU":
        return keras.layers.GRUCell(units, reset_after=False, bias_initializer=GRUGateBias(), name=name)
    return keras.layers.LSTMCell(units, unit_forget_bias=True, name=name)


class FrameNoise(keras.layers.Layer):
    """auDeep's encoder input noise: in training, each frame of each example becomes zeros with probability
    ``rate`` (no rescaling). ``(B, S, D) -> (B, S, D)``."""

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        shape = ops.shape(x)
        u = keras.random.uniform((shape[0], shape[1], 1), seed=self.seed_generator)
        return x * ops.cast(u >= self.rate, x.dtype)


def split_state(state, arch: RNNArchitecture) -> list[list[list]]:
    """Split a state vector ``(B, arch.state_size)`` in auDeep's layout.

    Returns ``parts[direction][layer]``: the Keras initial-state list of that layer (``[h]`` for GRU,
    ``[h, c]`` for LSTM).
    """
    chunks = iter(ops.split(state, arch.state_size // arch.num_units, axis=-1))
    parts = [[None] * arch.num_layers for _ in range(arch.directions)]
    for layer in range(arch.num_layers):
        for direction in range(arch.directions):
            audeep_order = [next(chunks) for _ in range(arch.states_per_layer)]   # [c, h] or [h]
            parts[direction][layer] = audeep_order[::-1]
    return parts


class RecurrentEncoder(keras.layers.Layer):
    """Encoder RNN: ``(B, S, D_in) -> (B, arch.state_size)``, the final states of all layers and directions.

    The backward stack of a bidirectional encoder is independent of the forward one and reads the sequence
    from the end (auDeep's ``bidirectional_dynamic_rnn`` over two ``MultiRNNCell`` stacks). Out of training
    the layer is just the recurrent layers: no noise and no dropout ops appear in an inference graph.
    """

    def __init__(self, arch: RNNArchitecture, *, keep_prob: float, noise: float, unroll: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.arch = arch
        self.noise = FrameNoise(noise, name="noise")
        self.dropout = keras.layers.Dropout(1.0 - keep_prob, name="dropout")
        self.rnns = [recurrent_layer(arch.cell, arch.num_units, go_backwards=direction == 1 and layer == 0,
                                     unroll=unroll, name=f"{'fw' if direction == 0 else 'bw'}_{layer}")
                     for direction in range(arch.directions) for layer in range(arch.num_layers)]

    def build(self, input_shape):
        for index, rnn in enumerate(self.rnns):
            first = index % self.arch.num_layers == 0
            use_tf1_kernels(rnn.cell, input_shape[-1] if first else self.arch.num_units)
            rnn.build(tuple(input_shape) if first else (*input_shape[:-1], self.arch.num_units))

    def _each_layer(self, x, training: bool):
        """Every layer in turn, with :meth:`call`'s training noise and dropout: yields ``(direction, layer,
        outputs (B, S, U), final states as Keras returns them)``."""
        num_layers = self.arch.num_layers
        if training:
            x = self.noise(x, training=True)
        for direction in range(self.arch.directions):
            seq = x
            for layer in range(num_layers):
                if training:
                    seq = self.dropout(seq, training=True)
                seq, *final = self.rnns[direction * num_layers + layer](seq, training=training)
                yield direction, layer, seq, final
                if training and layer < num_layers - 1:
                    seq = self.dropout(seq, training=True)

    def call(self, x, training=False):
        states = [[] for _ in range(self.arch.num_layers)]
        for _, layer, _, final in self._each_layer(x, training):
            states[layer].extend(final[::-1])            # Keras [h, c] -> auDeep [c, h]
        return ops.concatenate([s for layer in states for s in layer], axis=-1)

    def step_states(self, x, training=False):
        """GRU: ``(B, S, D_in) -> (B, S, arch.state_size)``, the state after every frame in :meth:`call`'s layout
        (the backward stack's steps put back in time order; for a forward-only encoder the last step is
        :meth:`call`'s output). ``training`` adds :meth:`call`'s noise and dropout."""
        if self.arch.cell != "GRU":
            raise ValueError("step states need a GRU encoder (an LSTM's cell states are not returned per step)")
        states = [[] for _ in range(self.arch.num_layers)]
        for direction, layer, seq, _ in self._each_layer(x, training):
            states[layer].append(ops.flip(seq, axis=1) if direction == 1 else seq)
        return ops.concatenate([s for layer in states for s in layer], axis=-1)


class FeedbackCell(keras.layers.Layer):
    """One step of the decoder's forward stack, with auDeep's feed-previous option.

    Step input (concatenated, prepared by :class:`RecurrentDecoder`):
    ``[teacher (O), feed flag (1), side (S), dropout masks (O + (L-1)·U + U)]``.
    The layer input is the teacher frame, or the previous output when the flag is 1; the output is
    ``o_t = tanh(W·[h_t, side_t] + b)`` of size O, which is also carried as the last state.
    """

    def __init__(self, cell: str, num_layers: int, units: int, out_dim: int, side_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.units, self.out_dim, self.side_dim = units, out_dim, side_dim
        self.states_per_layer = 2 if cell == "LSTM" else 1
        self.cells = [recurrent_cell(cell, units, name=f"fw_{layer}") for layer in range(num_layers)]
        self.projection = tanh_dense(out_dim, name="projection")
        self.state_size = [units] * (self.states_per_layer * num_layers) + [out_dim]
        self.output_size = out_dim

    def build(self, input_shape):
        for layer, cell in enumerate(self.cells):
            use_tf1_kernels(cell, self.out_dim if layer == 0 else self.units)
            cell.build((None, self.out_dim if layer == 0 else self.units))
        self.projection.build((None, self.units + self.side_dim))

    def call(self, inputs, states, training=False):
        o, u, n = self.out_dim, self.units, self.states_per_layer
        teacher, flag = inputs[:, :o], inputs[:, o:o + 1]
        side = inputs[:, o + 1:o + 1 + self.side_dim]
        at = o + 1 + self.side_dim
        x = (flag * states[-1] + (1.0 - flag) * teacher) * inputs[:, at:at + o]
        at += o
        new_states = []
        for layer, cell in enumerate(self.cells):
            if layer:
                x = x * inputs[:, at:at + u]
                at += u
            x, layer_states = cell(x, list(states[layer * n:(layer + 1) * n]), training=training)
            new_states.extend(layer_states)
        x = x * inputs[:, at:at + u]
        y = self.projection(ops.concatenate([x, side], axis=-1) if self.side_dim else x)
        return y, new_states + [y]


class RecurrentDecoder(keras.layers.Layer):
    """Decoder RNN started from a state vector: ``(state (B, arch.state_size), teacher (B, S, O)) -> (B, S, O)``.

    Step t emits ``o_t = tanh(W·[h_fw_t, h_bw_t] + b)``. The forward stack reads ``teacher[:, t]`` — the
    caller shifts it so that it never holds the frame reconstructed at t — or, in training with probability
    ``feed_previous_prob``, its own previous output ``o_{t-1}``. The backward stack of a bidirectional
    decoder reads zeros: it is conditioned on its initial state only, and its outputs are re-aligned in
    time (auDeep's read the teacher sequence, so its output at t saw the very frame reconstructed at t).
    """

    def __init__(self, arch: RNNArchitecture, out_dim: int, *, keep_prob: float, feed_previous_prob: float,
                 **kwargs):
        super().__init__(**kwargs)
        self.arch, self.out_dim = arch, out_dim
        self.keep_prob, self.feed_previous_prob = keep_prob, feed_previous_prob
        units = arch.num_units
        self.cell = FeedbackCell(arch.cell, arch.num_layers, units, out_dim,
                                 side_dim=units if arch.bidirectional else 0, name="cell")
        self.forward = keras.layers.RNN(self.cell, return_sequences=True, name="forward")
        self.backward = [recurrent_layer(arch.cell, units, go_backwards=layer == 0, return_state=False,
                                         name=f"bw_{layer}")
                         for layer in range(arch.num_layers if arch.bidirectional else 0)]
        self.dropout = keras.layers.Dropout(1.0 - keep_prob, name="dropout")
        self.seed_generator = keras.random.SeedGenerator()

    def build(self, state_shape, teacher_shape):
        batch, steps, out_dim = teacher_shape
        units = self.arch.num_units
        for layer, rnn in enumerate(self.backward):
            use_tf1_kernels(rnn.cell, units if layer else 1)
            rnn.build((batch, steps, units if layer else 1))
        side = units if self.arch.bidirectional else 0
        self.forward.build((batch, steps, 2 * out_dim + 1 + side + self.arch.num_layers * units))

    def _step_noise(self, batch, steps, dtype, training):
        """Feed flags ``(B, S, 1)`` and the forward stack's dropout masks ``(B, S, O + L·U)``."""
        units, layers, out_dim = self.arch.num_units, self.arch.num_layers, self.out_dim
        width = out_dim + layers * units
        if not training:
            return ops.zeros((batch, steps, 1), dtype), ops.ones((batch, steps, width), dtype)
        flags = ops.cast(keras.random.uniform((batch, steps, 1), seed=self.seed_generator)
                         < self.feed_previous_prob, dtype)
        draws = keras.random.uniform((batch, steps, out_dim + (2 * layers - 1) * units), seed=self.seed_generator)
        keep = ops.cast(draws < self.keep_prob, dtype) / self.keep_prob
        masks = [keep[..., :out_dim]]
        rest = keep[..., out_dim:]
        for layer in range(layers - 1):       # output of layer l and input of layer l+1: two masks
            pair = rest[..., 2 * layer * units:(2 * layer + 2) * units]
            masks.append(pair[..., :units] * pair[..., units:])
        masks.append(rest[..., -units:])
        return flags, ops.concatenate(masks, axis=-1)

    def call(self, state, teacher, training=False):
        initial = split_state(state, self.arch)
        shape = ops.shape(teacher)
        side = []
        if self.arch.bidirectional:
            seq = ops.zeros_like(teacher[..., :1])
            for layer, rnn in enumerate(self.backward):
                if training:
                    seq = self.dropout(seq, training=True)
                seq = rnn(seq, initial_state=initial[1][layer], training=training)
                if training:
                    seq = self.dropout(seq, training=True)
            side = [ops.flip(seq, axis=1)]
        flags, masks = self._step_noise(shape[0], shape[1], teacher.dtype, training)
        forward_initial = [s for layer_states in initial[0] for s in layer_states]
        forward_initial.append(ops.zeros_like(teacher[:, 0, :]))
        steps = ops.concatenate([teacher, flags, *side, masks], axis=-1)
        return self.forward(steps, initial_state=forward_initial, training=training)
