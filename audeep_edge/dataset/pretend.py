"""``preprocess --pretend``: one file's spectrogram in dB and its amplitude histogram as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audeep_edge.audio import read_audio
from audeep_edge.dataset.parsers import Parser
from audeep_edge.errors import ConfigError, DataError
from audeep_edge.features import FrontendConfig, extract


def pretend(parser: Parser, index: int, cfg: FrontendConfig, output: Path) -> list[tuple[str, str]]:
    """Process instance ``index`` only, without [-1, 1] scaling; write the plot to ``output``.

    Returns rows (name, value) describing the file and its spectrogram.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    instances = parser.parse()
    if not 0 <= index < len(instances):
        raise ConfigError(f"--pretend {index}: the data set has instances 0..{len(instances) - 1}")
    inst = instances[index]
    samples, fs = read_audio(inst.path)
    result = extract(samples, fs, cfg, scale=False, where=str(inst.path))
    db = np.concatenate(result.chunks)  # (T, F) in dB re the clip maximum, chunks in time order
    g = result.geometry
    fig, (ax_spec, ax_hist) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    image = ax_spec.imshow(db.T, origin="lower", aspect="auto", cmap="magma",
                           extent=(0, db.shape[0] * g.hop / g.fs, 0, db.shape[1]))
    ax_spec.set(title=f"{inst.filename} ({inst.label_nominal or 'unlabelled'})", xlabel="time (s)",
                ylabel="mel band" if cfg.mel_bands else "frequency bin")
    for boundary in np.cumsum([c.shape[0] for c in result.chunks])[:-1]:
        ax_spec.axvline(boundary * g.hop / g.fs, color="white", lw=0.8, ls="--")
    fig.colorbar(image, ax=ax_spec, label="dB re max")
    ax_hist.hist(db.ravel(), bins=60, color="tab:blue")
    ax_hist.set(title="amplitude histogram", xlabel="dB re max", ylabel="count")
    fig.tight_layout()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=100)
    except OSError as exc:
        raise DataError(f"{output}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return [
        ("instance", f"{index} of {len(instances)}"),
        ("file", str(inst.path)),
        ("filename", inst.filename),
        ("label", str(inst.label_nominal)),
        ("audio", f"{samples.shape[0] / fs:.3f} s, {fs} Hz, {samples.shape[1]} channel(s)"),
        ("geometry", f"fs {g.fs} Hz, n_fft {g.n_fft}, hop {g.hop}, overlap {g.overlap}"),
        ("spectrogram", f"{len(result.chunks)} chunk(s) of {list(result.chunks[0].shape)} (time, freq)"),
        ("dB range", f"{db.min():.1f} .. {db.max():.1f}"),
        ("plot", str(output)),
    ]
