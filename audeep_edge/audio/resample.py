"""Polyphase resampling that gives the same samples whether the signal arrives whole or block by block."""

from __future__ import annotations

from math import gcd

import numpy as np


_BLOCK = 8192


def _lowpass(numtaps: int, cutoff: float) -> np.ndarray:
    """Kaiser (beta 5) windowed-sinc low-pass, unit DC gain: ``scipy.signal.firwin(numtaps, cutoff,
    window=("kaiser", 5.0))`` in numpy alone (cutoff relative to Nyquist), so the runtime needs no scipy."""
    m = np.arange(numtaps) - (numtaps - 1) / 2
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, 5.0)
    return h / h.sum()


class StreamingResampler:
    """Stateful equivalent of ``scipy.signal.resample_poly(x, up, down)`` (Kaiser 5.0, half length 10·max).

    ``push`` returns every output sample whose input is complete; ``flush`` ends the signal (zeros after it)
    and returns the rest. Concatenated, the outputs equal ``resample_poly`` on the whole signal, so offline
    preprocessing and live capture share one resampler. Latency: about 10 input samples.

    Parameters
    ----------
    fs_in, fs_out : input and output sample rates in Hz.
    """

    def __init__(self, fs_in: int, fs_out: int) -> None:
        g = gcd(int(fs_in), int(fs_out))
        self.up, self.down = int(fs_out) // g, int(fs_in) // g
        max_rate = max(self.up, self.down)
        self._half = 10 * max_rate
        h = _lowpass(2 * self._half + 1, 1.0 / max_rate) * self.up
        self._taps = -(-h.size // self.up)
        bank = np.zeros(self.up * self._taps)
        bank[: h.size] = h
        # bank[r, t] = h[r + t*up]: the taps that meet input sample (newest - t) for output phase r.
        self._bank = bank.reshape(self._taps, self.up).T.copy()
        self.reset()

    def reset(self) -> None:
        """Forget all input (start of a new signal)."""
        self._buf = np.zeros(self._taps)  # zeros stand for the samples before the signal starts
        self._buf_start = -self._taps  # global input index of _buf[0]
        self._n_in = 0
        self._m = 0  # next output index

    def _emit(self, m_end: int) -> np.ndarray:
        # bounded work arrays: (outputs x taps) gathers of at most _BLOCK outputs at a time
        parts = [self._emit_block(min(m_end, m0 + _BLOCK)) for m0 in range(self._m, m_end, _BLOCK)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _emit_block(self, m_end: int) -> np.ndarray:
        m = np.arange(self._m, m_end)
        p = m * self.down + self._half
        newest = p // self.up
        idx = newest[:, None] - np.arange(self._taps)[None, :] - self._buf_start
        y = np.einsum("mt,mt->m", self._bank[p % self.up], self._buf[idx])
        self._m = m_end
        keep_from = (self._m * self.down + self._half) // self.up - self._taps + 1 - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return y

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add 1-D input samples; return the output samples now complete."""
        self._buf = np.concatenate([self._buf, np.asarray(block, dtype=np.float64)])
        self._n_in += len(block)
        return self._emit(max(0, (self._n_in * self.up - 1 - self._half) // self.down + 1))

    def flush(self) -> np.ndarray:
        """End of signal: return the remaining outputs (total = ceil(n_in · up / down))."""
        m_end = -(-self._n_in * self.up // self.down)
        self._buf = np.concatenate([self._buf, np.zeros(self._half // self.up + self._taps + 1)])
        return self._emit(m_end)


def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Resample a whole 1-D signal from ``fs_in`` to ``fs_out`` Hz (same samples as streaming)."""
    if fs_in == fs_out:
        return x
    r = StreamingResampler(fs_in, fs_out)
    return np.concatenate([r.push(x), r.flush()])
