"""Microphone capture through sounddevice (PortAudio), with PyAudio as a fallback backend.

The capture callback only copies the block into a :class:`BlockQueue` and returns: it never waits for the
pipeline. When the pipeline falls behind, whole blocks are dropped and counted as overruns.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable, Iterator

import numpy as np

from audeep_edge.errors import AudioError
from audeep_edge.sources.base import AudioBlock, BlockQueue

log = logging.getLogger(__name__)

NO_BACKEND = ("--mic: no audio input backend; install PortAudio (`sudo apt install libportaudio2`) "
              "or PyAudio (`pip install 'audeep-edge[pyaudio]'`)")


@dataclass(frozen=True)
class InputDevice:
    """An audio input as the backend reports it."""

    index: int
    name: str
    channels: int
    default_rate: int
    default: bool = False


def _sounddevice_backend() -> SimpleNamespace:
    import sounddevice as sd  # raises OSError when the PortAudio library is missing

    def devices() -> list[InputDevice]:
        default_in = sd.default.device[0]
        return [InputDevice(i, d["name"], d["max_input_channels"], int(d["default_samplerate"]), i == default_in)
                for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]

    def supports(device: int | None, rate: int, channels: int) -> bool:
        try:
            sd.check_input_settings(device=device, samplerate=rate, channels=channels, dtype="float32")
            return True
        except Exception:  # PortAudioError or ValueError: "invalid sample rate" and friends
            return False

    return SimpleNamespace(name="sounddevice", InputStream=sd.InputStream, devices=devices, supports=supports,
                           errors=(sd.PortAudioError, ValueError))


def _pyaudio_backend() -> SimpleNamespace:
    import pyaudio

    audio = pyaudio.PyAudio()

    def devices() -> list[InputDevice]:
        default_in = audio.get_default_input_device_info()["index"] if audio.get_device_count() else -1
        infos = (audio.get_device_info_by_index(i) for i in range(audio.get_device_count()))
        return [InputDevice(d["index"], d["name"], d["maxInputChannels"], int(d["defaultSampleRate"]),
                            d["index"] == default_in) for d in infos if d["maxInputChannels"] > 0]

    def supports(device: int | None, rate: int, channels: int) -> bool:
        try:
            return bool(audio.is_format_supported(rate, input_device=device, input_channels=channels,
                                                  input_format=pyaudio.paFloat32))
        except ValueError:
            return False

    class InputStream:
        """The sounddevice.InputStream interface on top of PyAudio's callback stream."""

        def __init__(self, *, device, samplerate, channels, dtype, blocksize, callback) -> None:
            def relay(data, frames, time_info, status):
                flags = SimpleNamespace(input_overflow=bool(status & pyaudio.paInputOverflow))
                callback(np.frombuffer(data, dtype=np.float32).reshape(frames, channels), frames, time_info, flags)
                return None, pyaudio.paContinue

            self._stream = audio.open(format=pyaudio.paFloat32, channels=channels, rate=samplerate, input=True,
                                      input_device_index=device, frames_per_buffer=blocksize,
                                      stream_callback=relay, start=False)

        @property
        def active(self) -> bool:
            return self._stream.is_active()

        def start(self) -> None:
            self._stream.start_stream()

        def stop(self) -> None:
            self._stream.stop_stream()

        def close(self) -> None:
            self._stream.close()

    return SimpleNamespace(name="pyaudio", InputStream=InputStream, devices=devices, supports=supports,
                           errors=(OSError, ValueError))


def audio_backend() -> SimpleNamespace:
    """sounddevice if PortAudio loads, else PyAudio; AudioError when neither is usable."""
    for make in (_sounddevice_backend, _pyaudio_backend):
        try:
            return make()
        except (ImportError, OSError) as exc:
            log.debug("audio backend unavailable: %s", exc)
    raise AudioError(NO_BACKEND)


def list_input_devices() -> list[InputDevice]:
    """Every input device of the first working backend."""
    return audio_backend().devices()


def find_device(devices: list[InputDevice], device: str | int | None) -> InputDevice:
    """Resolve ``--device`` (an index, or a case-insensitive part of the name; None = the default input)."""
    if not devices:
        raise AudioError("--mic: no audio input device found; plug in a microphone (see --list-devices)")
    if device is None or device == "":
        return next((d for d in devices if d.default), devices[0])
    text = str(device).strip()
    if text.isdigit():
        match = [d for d in devices if d.index == int(text)]
    else:
        match = [d for d in devices if text.lower() in d.name.lower()]
    if len(match) != 1:
        names = "; ".join(f"{d.index}: {d.name}" for d in devices)
        problem = "matches no" if not match else "matches more than one"
        raise AudioError(f"--device {text!r} {problem} input device ({names})")
    return match[0]


class MicrophoneSource:
    """Live capture from an input device.

    Parameters
    ----------
    device : ``--device`` index or name part; None for the default input.
    sample_rate : capture rate in Hz; None tries ``preferred_rate`` (the bundle's, saving a resampling
        step) and falls back to the device's default rate.
    channels : channels to capture.
    preferred_rate : see ``sample_rate``.
    block_seconds : callback block length in seconds.
    queue_blocks : blocks the hand-over queue holds before it drops (overruns).
    backend : an object like :func:`audio_backend`'s (tests pass one with a fake ``InputStream``).
    """

    def __init__(self, device: str | int | None = None, sample_rate: int | None = None, channels: int = 1, *,
                 preferred_rate: int | None = None, block_seconds: float = 0.1, queue_blocks: int = 64,
                 backend: SimpleNamespace | None = None) -> None:
        self._backend = backend or audio_backend()
        chosen = find_device(self._backend.devices(), device)
        if channels > chosen.channels:
            raise AudioError(f"--channels {channels}: input device {chosen.name!r} has only {chosen.channels}")
        rate = sample_rate or preferred_rate or chosen.default_rate
        if not self._backend.supports(chosen.index, rate, channels):
            if sample_rate is not None:
                raise AudioError(f"--rate {rate}: not supported by input device {chosen.name!r} "
                                 f"(its default is {chosen.default_rate} Hz)")
            rate = chosen.default_rate
        self.device, self.name = chosen, f"input device {chosen.index}: {chosen.name}"
        self.sample_rate, self.channels = int(rate), int(channels)
        self._blocksize = max(1, int(round(block_seconds * self.sample_rate)))
        self._queue = BlockQueue(queue_blocks)
        self._device_overflows = 0

    @property
    def overruns(self) -> int:
        return self._queue.overruns + self._device_overflows

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def _callback(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        if getattr(status, "input_overflow", False):
            self._device_overflows += 1
        self._queue.offer(AudioBlock(np.array(indata, dtype=np.float32, copy=True), time.monotonic()))

    def blocks(self, stop: threading.Event) -> Iterator[AudioBlock]:
        stream = self._open(self._callback)
        try:
            stream.start()
            log.info("capturing from %s at %d Hz, %d channel(s)", self.name, self.sample_rate, self.channels)
            while not stop.is_set():
                block = self._queue.take(timeout=0.2)
                if block is not None:
                    yield block
                elif not getattr(stream, "active", True):
                    raise AudioError(f"--mic: {self.name} stopped delivering audio (unplugged?)")
        finally:
            stream.stop()
            stream.close()

    def _open(self, callback: Callable) -> object:
        try:
            return self._backend.InputStream(device=self.device.index, samplerate=self.sample_rate,
                                             channels=self.channels, dtype="float32", blocksize=self._blocksize,
                                             callback=callback)
        except self._backend.errors as exc:
            raise AudioError(f"--mic: cannot open {self.name} ({exc})") from None
