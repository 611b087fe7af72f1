"""Reading audio files with clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile

from audeep_edge.errors import AudioError


def read_error_reason(exc: Exception) -> str:
    """soundfile's error in a few words, without the path it repeats ("Error opening '…': Format not recognised.")."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"^Error opening .*?: ", "", text)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file (any format libsndfile knows: WAV, FLAC, OGG, ...).

    Returns
    -------
    samples : np.ndarray [shape=(n, channels), float64 in [-1, 1]]
    fs : sample rate in Hz

    Raises
    ------
    AudioError : unreadable/corrupt file, no samples, or non-finite samples.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        samples, fs = soundfile.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        raise AudioError(f"{path}: cannot read audio ({read_error_reason(exc)})") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: the file contains no audio samples")
    check_finite(samples, str(path))
    return samples, int(fs)


# Data chunk sizes that streaming writers put in a header before they know the length (arecord, sox to a pipe).
_PLACEHOLDER_SIZES = 0x7FFF_F000


def truncation(extra_info: str, sample_rate: int) -> str | None:
    """What libsndfile's log of an opened file (``SoundFile.extra_info``) says is missing from its end, or None.

    A WAV whose data chunk is shorter than its header declares gives the seconds missing; an Ogg stream whose
    last page lacks the end-of-stream mark was cut short by an unknown amount.
    """
    declared = re.search(r"^data\s*:\s*(\d+) \(should be (\d+)\)", extra_info, re.MULTILINE)
    align = re.search(r"Block Align\s*:\s*(\d+)", extra_info)
    if declared and align and int(align[1]) and int(declared[1]) < _PLACEHOLDER_SIZES:
        missing = (int(declared[1]) - int(declared[2])) / int(align[1]) / sample_rate
        if missing > 0:
            return f"the file is cut short: {missing:.2f} s of the audio its header declares are missing"
    if "Last page lacks an end-of-stream bit" in extra_info:
        return "the file is cut short (its last Ogg page has no end-of-stream mark); how much is missing is unknown"
    return None


def check_finite(samples: np.ndarray, where: str) -> None:
    """Raise AudioError if ``samples`` contains NaN or infinity (garbage in would be garbage out)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(samples)):        # NaN and inf reach the sum: one pass, no mask (per audio block)
            return
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:                                       # else the sum overflowed on finite samples
        raise AudioError(f"{where}: {bad} non-finite (NaN/inf) audio samples")
