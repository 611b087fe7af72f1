"""The spectrogram front end: auDeep parity, streaming == offline, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import get_window, resample_poly, spectrogram

from audeep_edge.audio import StreamingResampler, mix, read_audio
from audeep_edge.audio.io import check_finite
from audeep_edge.errors import AudioError, ConfigError
from audeep_edge.features import FrontendConfig, StreamingFrontend, extract, window_features

ESC_SETTINGS = dict(window_width=0.08, window_overlap=0.04, mel_bands=128, fixed_length=5.0, center_fixed=True)


def reference_spectrogram(x: np.ndarray, fs: int, width: float, overlap: float, n_mels: int,
                          clip_below: float | None) -> np.ndarray:
    """Independent implementation of auDeep's formulas (docs/frontend.md, "Steps"): scipy.signal.spectrogram + a
    hand-built mel matrix."""
    n, o = int(fs * width), int(fs * overlap)
    y = np.append(x[0], x[1:] - 0.95 * x[:-1])
    _, _, mag = spectrogram(y, fs, window=get_window("hann", n, fftbins=True), noverlap=o, mode="magnitude")
    power = mag**2 / n  # (bins, T)
    mel_max = 2595 * np.log10(1 + (fs / 2) / 700)
    hz = 700 * (10 ** (np.linspace(0, mel_max, n_mels + 2) / 2595) - 1)
    b = np.floor((n + 1) * hz / fs).astype(int)
    k = np.arange(n // 2 + 1)[None, :]
    lo, mid, hi = b[:-2, None], b[1:-1, None], b[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((k >= lo) & (k < mid), (k - lo) / (mid - lo), 0.0)
        falling = np.where((k >= mid) & (k < hi), (hi - k) / (hi - mid), 0.0)
    mel = (rising + falling) @ power  # (n_mels, T)
    eps = mel[mel > 0].min()
    db = 10 * np.log10(np.maximum(mel, eps) / np.maximum(mel, eps).max())
    if clip_below is not None:
        db = np.maximum(db, clip_below)
    scaled = 2 * (db - db.min()) / (db.max() - db.min()) - 1
    return scaled.T


@pytest.mark.parametrize("clip_below", [-30, -60, None])
def test_matches_independent_scipy_computation_on_real_esc10_clips(esc_mini, clip_below):
    for path in sorted(esc_mini.rglob("*.ogg"))[::4]:
        samples, fs = read_audio(path)
        cfg = FrontendConfig(**ESC_SETTINGS, clip_below=clip_below)
        ours = extract(samples, fs, cfg).chunks[0]
        x = mix(samples, "MEAN")
        n_fixed = int(5.0 * fs)
        x = x[(x.size - n_fixed) // 2:][:n_fixed] if x.size >= n_fixed else np.pad(
            x, ((n_fixed - x.size) // 2, n_fixed - x.size - (n_fixed - x.size) // 2))
        ref = reference_spectrogram(x, fs, 0.08, 0.04, 128, clip_below)
        assert ours.shape == (124, 128) == ref.shape
        assert np.abs(ours - ref).max() <= 1e-5, path.name


def test_random_block_sizes_give_the_same_frames_as_the_whole_clip(esc_mini):
    samples, fs = read_audio(sorted(esc_mini.rglob("*.ogg"))[0])
    x = mix(samples, "MEAN")
    geometry = FrontendConfig(window_width=0.08, window_overlap=0.04).geometry(fs)
    whole = StreamingFrontend(geometry, 128).push(x)
    rng = np.random.default_rng(1)
    fe = StreamingFrontend(geometry, 128)
    parts, i = [], 0
    while i < x.size:
        n = int(rng.choice([1, 7, 160, 1023, 4096, 17000]))
        parts.append(fe.push(x[i:i + n]))
        i += n
    streamed = np.concatenate(parts)
    assert streamed.shape == whole.shape == (geometry.num_frames(x.size), 128)
    assert np.abs(window_features(streamed, -60) - window_features(whole, -60)).max() <= 1e-5
    assert np.allclose(streamed, whole, rtol=1e-9, atol=0)


def test_streaming_resampler_equals_resample_poly_for_any_block_split():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(30011)
    for fs_in, fs_out in [(48000, 44100), (16000, 44100), (44100, 22050)]:
        r = StreamingResampler(fs_in, fs_out)
        out, i = [], 0
        while i < x.size:
            n = int(rng.integers(1, 5000))
            out.append(r.push(x[i:i + n]))
            i += n
        out.append(r.flush())
        np.testing.assert_allclose(np.concatenate(out), resample_poly(x, r.up, r.down), atol=1e-12)


def test_sample_rate_option_resamples_to_the_target_geometry(tone_wav):
    samples, fs = read_audio(tone_wav(fs=48000, seconds=5.2))
    out = extract(samples, fs, FrontendConfig(**ESC_SETTINGS, sample_rate=44100, clip_below=-60))
    assert out.geometry.fs == 44100 and out.chunks[0].shape == (124, 128)


def test_more_than_two_channels_are_mixed_not_interleaved(tone_wav):
    samples, fs = read_audio(tone_wav(channels=6, seconds=1.0))
    mono, _ = read_audio(tone_wav(name="mono.wav", channels=1, seconds=1.0))
    cfg = FrontendConfig(mel_bands=40)
    np.testing.assert_allclose(extract(samples, fs, cfg).chunks[0], extract(mono, fs, cfg).chunks[0], atol=1e-6)


def test_silence_gives_valid_zero_features_instead_of_crashing():
    out = extract(np.zeros((16000, 1)), 16000, FrontendConfig(mel_bands=40, clip_below=-60))
    assert out.chunks[0].shape == (49, 40)
    assert np.all(out.chunks[0] == 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_rejected_with_a_clear_error(bad):
    x = np.zeros((16000, 1))
    x[100] = bad
    with pytest.raises(AudioError, match="clip.wav: 1 non-finite"):
        extract(x, 16000, FrontendConfig(), where="clip.wav")


def test_huge_but_finite_samples_are_not_mistaken_for_non_finite_ones():
    """The check sums the block (NaN/inf propagate); a sum that overflows on finite samples is no error."""
    check_finite(np.full(1000, 3e38, np.float32), "loud.wav")
    with pytest.raises(AudioError, match="loud.wav: 1 non-finite"):
        check_finite(np.array([3e38, 3e38, -np.inf], np.float32), "loud.wav")


def test_chunking_keeps_the_first_chunks_and_refuses_too_few():
    x = np.random.default_rng(3).standard_normal((22050 * 31, 1)) * 0.1
    cfg = FrontendConfig(window_width=0.08, window_overlap=0.04, mel_bands=64, fixed_length=31,
                         chunk_length=2, chunk_count=15)
    chunks = extract(x, 22050, cfg).chunks
    assert len(chunks) == 15 and all(c.shape == (50, 64) for c in chunks)
    assert all(c.min() == -1 and c.max() == 1 for c in chunks)
    with pytest.raises(AudioError, match="only 15 complete chunks"):
        extract(x, 22050, FrontendConfig(window_width=0.08, window_overlap=0.04, fixed_length=31,
                                         chunk_length=2, chunk_count=16))


@pytest.mark.parametrize("fs,frames", [(44100, 124), (22050, 124), (16000, 124)])
def test_fixed_length_gives_the_spec_frame_count(fs, frames):
    cfg = FrontendConfig(window_width=0.08, window_overlap=0.04, fixed_length=5.0)
    assert cfg.geometry(fs).num_frames(int(5.0 * fs)) == frames


def test_invalid_settings_are_config_errors():
    with pytest.raises(ConfigError, match="window-overlap"):
        FrontendConfig(window_width=0.04, window_overlap=0.05)
    with pytest.raises(ConfigError, match="together"):
        FrontendConfig(chunk_length=2.0)
    with pytest.raises(ConfigError, match="channels"):
        FrontendConfig(channels="SIDE")
