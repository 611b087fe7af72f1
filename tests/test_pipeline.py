"""The streaming pipeline in-process: ring buffers, window timing, payloads, smoothing, health, sources."""

from __future__ import annotations

import base64
import os
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from stream_testing import TINY, real_clip

from audeep_edge.audio import resample
from audeep_edge.bundle import load_bundle
from audeep_edge.encoder import Encoded, Encoder
from audeep_edge.errors import AudioError
from audeep_edge.features import StreamingFrontend
from audeep_edge.head import EmaSmoother, MajoritySmoother, top_k
from audeep_edge.pipeline import Pipeline, RingBuffer, WindowAnalyzer, Windower, embedding_fields
from audeep_edge.sources import AudioBlock, BlockQueue, MicrophoneSource, StdinSource
from audeep_edge.sources.mic import InputDevice, find_device

BUNDLE = load_bundle(TINY)
WINDOW_KEYS = {"schema_version", "device_id", "seq", "audio_time", "wall_time", "label", "confidence", "top_k",
               "smoothed_label", "smoothed_confidence", "dbfs"}
HEALTH_KEYS = {"schema_version", "device_id", "wall_time", "uptime_s", "rtf", "latency_ms_p50", "latency_ms_p99",
               "overruns", "queue_depth", "dropped", "buffered"}


class MemorySink:
    """Keeps every payload; reports MQTT-like stats."""

    def __init__(self) -> None:
        self.windows, self.health, self.events = [], [], []

    def publish_window(self, payload):
        self.windows.append(payload)

    def publish_health(self, payload):
        self.health.append(payload)

    def publish_event(self, payload):
        self.events.append(payload)

    def close(self):
        pass

    def stats(self):
        return {"buffered": 2, "dropped": 1, "connected": True}


class ArraySource:
    """Blocks of random sizes from an array (n, channels)."""

    name, overruns, queue_depth, channels = "array", 0, 0, 1

    def __init__(self, samples: np.ndarray, sample_rate: int, seed: int = 0) -> None:
        self.samples, self.sample_rate = samples.reshape(len(samples), -1), sample_rate
        self.sizes = np.random.default_rng(seed).choice([1, 37, 160, 1600, 7000], size=len(samples))

    def blocks(self, stop):
        i = k = 0
        while i < len(self.samples) and not stop.is_set():
            n = int(self.sizes[k])
            yield AudioBlock(self.samples[i:i + n].astype(np.float32), time.monotonic())
            i, k = i + n, k + 1


def windower(source_rate: int = 16000, hop_frames: int = 10) -> Windower:
    return Windower(BUNDLE, hop_frames=hop_frames, source_rate=source_rate)


def analyzer(encoder=None, **kwargs) -> WindowAnalyzer:
    fe = BUNDLE.frontend
    return WindowAnalyzer(encoder or Encoder(BUNDLE.model_path), BUNDLE.labels, clip_below=fe.clip_below,
                          clip_above=fe.clip_above, device_id="test", **kwargs)


def test_ring_buffer_keeps_the_newest_rows_for_any_append_sizes():
    rng = np.random.default_rng(0)
    ring, seen = RingBuffer(24, (3,)), np.zeros((0, 3))
    for n in rng.choice([0, 1, 5, 23, 24, 25, 60], size=200):
        rows = rng.standard_normal((n, 3))
        ring.append(rows)
        seen = np.concatenate([seen, rows])
        assert np.array_equal(ring.newest(), seen[-24:])


@pytest.mark.parametrize(("source_rate", "hop_frames"), [(16000, 10), (16000, 24), (16000, 40), (44100, 10)])
def test_windows_are_exactly_the_frames_and_samples_of_the_whole_signal(tmp_path, source_rate, hop_frames):
    """Any block split, any hop (also longer than the window), with and without resampling."""
    x, _ = real_clip(tmp_path / "rain.wav", source_rate)
    w, rng = windower(source_rate, hop_frames), np.random.default_rng(1)
    windows, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 9000))
        windows += w.push(x[i:i + n, None], 0.0)
        i += n
    windows += w.flush(0.0)
    y = resample(x, source_rate, 16000)
    g = BUNDLE.geometry
    frames = StreamingFrontend(g, 32, 0.95).push(y)
    span = 23 * g.hop + g.n_fft
    assert len(windows) == (y.size - span) // (hop_frames * g.hop) + 1
    for j, window in enumerate(windows):
        start = j * hop_frames
        assert window.index == j and window.audio_time == pytest.approx((start * g.hop + span) / g.fs)  # its end
        assert np.allclose(window.power, frames[start:start + 24], rtol=1e-9, atol=0)
        assert np.allclose(window.samples, y[start * g.hop:start * g.hop + span], rtol=0, atol=1e-12)


def test_window_payload_follows_schema_v1():
    x = np.random.default_rng(0).standard_normal(40000) * 0.1
    sink = MemorySink()
    summary = Pipeline(ArraySource(x, 16000), windower(), analyzer(top_k=2), [sink]).run()
    assert summary.windows == len(sink.windows) == (40000 - 15360) // 6400 + 1
    assert [p["seq"] for p in sink.windows] == list(range(summary.windows))
    for p in sink.windows:
        assert set(p) == WINDOW_KEYS and p["device_id"] == "test" and p["schema_version"] == 1
        assert [e["label"] for e in p["top_k"]][0] == p["label"] and len(p["top_k"]) == 2
        assert p["confidence"] == p["top_k"][0]["p"] and p["smoothed_label"] in BUNDLE.labels
        assert -25 < p["dbfs"] < -15  # 0.1 RMS noise = -20 dBFS
    assert set(sink.health[-1]) == HEALTH_KEYS
    assert sink.health[-1]["dropped"] == 1 and sink.health[-1]["buffered"] == 2
    assert sink.health[-1]["rtf"] > 0 and sink.health[-1]["latency_ms_p99"] >= sink.health[-1]["latency_ms_p50"]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("encoding", ["json", "base64"])
def test_embedding_encodings_round_trip(dtype, encoding):
    vector = np.random.default_rng(0).standard_normal(32).astype(np.float32)
    fields = embedding_fields(vector, dtype, encoding)
    assert fields["embedding_dtype"] == dtype
    if encoding == "base64":
        decoded = np.frombuffer(base64.b64decode(fields["embedding_b64"]), dtype="<f2" if dtype == "float16" else "<f4")
    else:
        decoded = np.array(fields["embedding"])
    assert np.array_equal(decoded, vector.astype(dtype))


class ScriptedEncoder:
    """Returns the probabilities of a script, one row per window; no classifier head when ``script`` is None."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def __call__(self, window):
        self.calls += 1
        p = None if self.script is None else np.asarray(self.script[(self.calls - 1) % len(self.script)], np.float32)
        return Encoded(embedding=np.ones(4, np.float32), probabilities=p)


def test_smoothed_label_changes_are_published_as_events():
    script = [[0.9, 0.05, 0.05]] * 3 + [[0.1, 0.8, 0.1]] * 5
    sink = MemorySink()
    Pipeline(ArraySource(np.zeros(16000 * 6), 16000), windower(),
             analyzer(ScriptedEncoder(script), smoothing="majority", smoothing_windows=3), [sink],
             max_windows=8).run()
    assert [p["label"] for p in sink.windows] == ["Dog bark"] * 3 + ["Rain"] * 5
    assert [p["smoothed_label"] for p in sink.windows] == ["Dog bark"] * 4 + ["Rain"] * 4
    # the smoothed label's own probability: its mean over the last 3 windows, not this window's 0.1
    assert sink.windows[3]["smoothed_confidence"] == round((0.9 + 0.9 + 0.1) / 3, 4)
    assert [(e["type"], e["seq"], e["previous"], e["label"]) for e in sink.events] == [
        ("label_change", 4, "Dog bark", "Rain")]


def test_an_encoder_without_a_head_gives_null_labels_and_silence_is_valid():
    sink = MemorySink()
    Pipeline(ArraySource(np.zeros(20000), 16000), windower(), analyzer(ScriptedEncoder(None), embeddings="float32",
             embedding_encoding="json"), [sink]).run()
    assert sink.windows and all(p["label"] is None and p["top_k"] == [] for p in sink.windows)
    assert all(p["dbfs"] == -120.0 and p["embedding"] == [1.0] * 4 for p in sink.windows)


class StubAdaptation:
    """The interface listen uses from audeep_edge.head.adaptation.Adaptation: one enrolled label appears after
    the second window; novelty rises from 0.1 by 0.2 per window."""

    def __init__(self):
        from audeep_edge.head.novelty import NoveltyConfig, NoveltyDetector

        self.detector = NoveltyDetector(NoveltyConfig(threshold=0.6, release=0.5, min_duration=0.0))
        self.windows, self.enrolled = 0, False

    def poll(self):
        changed = self.windows == 2
        self.enrolled |= changed
        self.windows += 1
        return changed

    def labels(self, trained):
        return [*trained, "doorbell"] if self.enrolled else trained

    def classify(self, embedding, probabilities):
        return np.append(probabilities * 0.1, 0.9) if self.enrolled else probabilities

    def novelty(self, embedding):
        return 0.1 + 0.2 * (self.windows - 1)

    def event(self, audio_time, novelty):
        return self.detector.update(audio_time, novelty)


def test_enrolled_labels_and_novelty_reach_the_payloads():
    sink = MemorySink()
    Pipeline(ArraySource(np.zeros(16000 * 4), 16000), windower(),
             analyzer(ScriptedEncoder([[0.9, 0.05, 0.05]]), smoothing_windows=1, adaptation=StubAdaptation()),
             [sink], max_windows=4).run()
    assert [p["label"] for p in sink.windows] == ["Dog bark", "Dog bark", "doorbell", "doorbell"]
    assert [p["novelty"] for p in sink.windows] == [0.1, 0.3, 0.5, 0.7]
    novel = [e for e in sink.events if e["type"] == "novel"]
    assert len(novel) == 1 and novel[0]["state"] == "start" and novel[0]["seq"] == 3
    assert [e["label"] for e in sink.events if e["type"] == "label_change"] == ["doorbell"]


def test_majority_and_ema_smoothing():
    majority = MajoritySmoother(3)
    picks = [majority.update(np.eye(3)[i]) for i in [0, 1, 1, 2, 2, 0]]
    assert picks == [0, 1, 1, 1, 2, 2]  # ties go to the most recent of the tied labels
    ema = EmaSmoother(3)  # alpha 0.5
    assert [ema.update(p) for p in ([0.8, 0.2], [0.4, 0.6], [0.2, 0.8])] == [0, 0, 1]
    assert top_k(np.array([0.2, 0.5, 0.3]), ["a", "b", "c"], 5) == [
        {"label": "b", "p": 0.5}, {"label": "c", "p": 0.3}, {"label": "a", "p": 0.2}]


def test_nan_samples_stop_the_run_with_an_audio_error():
    x = np.zeros(30000)
    x[20000] = np.nan
    with pytest.raises(AudioError, match="array: 1 non-finite"):
        Pipeline(ArraySource(x, 16000), windower(), analyzer(ScriptedEncoder(None)), [MemorySink()]).run()


class FakeStream:
    """sounddevice.InputStream look-alike: a thread calls ``callback`` with blocks of a tone in real time x speed."""

    def __init__(self, *, device, samplerate, channels, dtype, blocksize, callback, speed=20.0, blocks=400):
        self.samplerate, self.channels, self.blocksize, self.callback = samplerate, channels, blocksize, callback
        self.speed, self.total, self.active = speed, blocks, False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t = np.arange(self.blocksize) / self.samplerate
        for k in range(self.total):
            if not self.active:
                return
            block = 0.3 * np.sin(2 * np.pi * 440 * (t + k * self.blocksize / self.samplerate))
            self.callback(np.repeat(block[:, None], self.channels, 1).astype(np.float32), self.blocksize, None,
                          SimpleNamespace(input_overflow=False))
            time.sleep(self.blocksize / self.samplerate / self.speed)

    def start(self):
        self.active = True
        self._thread.start()

    def stop(self):
        self.active = False
        self._thread.join()

    def close(self):
        pass


def fake_backend(**stream_options) -> SimpleNamespace:
    """Two devices; 16 kHz unsupported; ``.streams`` lists the streams opened."""
    devices = [InputDevice(0, "HDA Intel PCH: ALC3246 Analog", 2, 48000), InputDevice(3, "USB PnP Sound Device", 1,
                                                                                      44100, default=True)]
    streams = []

    def open_stream(**kwargs):
        streams.append(FakeStream(**kwargs, **stream_options))
        return streams[-1]

    return SimpleNamespace(name="fake", devices=lambda: devices, supports=lambda device, rate, ch: rate != 16000,
                           InputStream=open_stream, errors=(OSError,), streams=streams)


def test_microphone_source_streams_through_the_pipeline_and_releases_the_device():
    backend = fake_backend()
    source = MicrophoneSource("usb", preferred_rate=16000, backend=backend)
    assert source.sample_rate == 44100  # 16 kHz unsupported by the device: its default rate, resampled
    sink = MemorySink()
    summary = Pipeline(source, windower(source.sample_rate), analyzer(), [sink], max_windows=3).run()
    assert summary.windows == 3 and summary.overruns == 0
    assert [p["seq"] for p in sink.windows] == [0, 1, 2]
    assert sink.windows[0]["dbfs"] == pytest.approx(-13.5, abs=0.1)  # 0.3 x full-scale sine
    assert len(backend.streams) == 1 and not backend.streams[0].active


def test_a_slow_consumer_drops_whole_blocks_and_counts_them_as_overruns():
    source = MicrophoneSource(3, queue_blocks=4, preferred_rate=44100, backend=fake_backend(speed=1000, blocks=50))
    stop = threading.Event()
    blocks = source.blocks(stop)
    first = next(blocks)  # capture runs; nobody takes blocks for a while
    time.sleep(0.5)
    stop.set()
    rest = list(blocks)
    assert first.samples.shape == (4410, 1)
    assert source.overruns == 50 - 1 - len(rest) - source.queue_depth >= 40  # every block is accounted for


def test_block_queue_never_blocks_the_producer():
    q = BlockQueue(2)
    for i in range(5):
        q.offer(AudioBlock(np.full((1, 1), i, np.float32), 0.0))
    assert q.overruns == 3 and len(q) == 2
    assert q.take(0.01).samples[0, 0] == 0 and q.take(0.01).samples[0, 0] == 1 and q.take(0.01) is None


def test_device_selection_by_index_or_name_part():
    devices = fake_backend().devices()
    assert find_device(devices, None).index == 3 and find_device(devices, "0").index == 0
    assert find_device(devices, "alc3246").index == 0
    with pytest.raises(AudioError, match="--device 'Sound' matches no"):
        find_device(devices[:1], "Sound")
    with pytest.raises(AudioError, match="no audio input device"):
        find_device([], None)


def pipe_source(data: bytes, sample_format: str, channels: int = 1) -> StdinSource:
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return StdinSource(sample_format, 16000, channels, stream=os.fdopen(read, "rb"))


def test_stdin_decodes_interleaved_s16le_and_f32le():
    pcm = (np.arange(-8, 8, dtype="<i2") * 1024).reshape(-1, 2)
    blocks = list(pipe_source(pcm.tobytes(), "s16le", 2).blocks(threading.Event()))
    assert np.array_equal(np.concatenate([b.samples for b in blocks]), pcm / 32768.0)
    f32 = np.linspace(-1, 1, 64, dtype="<f4")
    blocks = list(pipe_source(f32.tobytes(), "f32le").blocks(threading.Event()))
    assert np.array_equal(np.concatenate([b.samples for b in blocks])[:, 0], f32)


@pytest.mark.parametrize(("data", "fmt", "message"), [
    ((np.arange(400, dtype="<i2") - 200).tobytes(), "f32le", "not f32le audio"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64), "s16le", "WAV header"),
    (bytes(101), "s16le", "1 stray bytes"),
])
def test_stdin_format_mistakes_are_named(data, fmt, message):
    with pytest.raises(AudioError, match=message):
        list(pipe_source(data, fmt).blocks(threading.Event()))
