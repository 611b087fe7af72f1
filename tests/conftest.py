"""Shared fixtures: a real mosquitto broker, the committed ESC-10 clips, generated audio."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

DATA = Path(__file__).parent / "data"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


class Mosquitto:
    """A real mosquitto broker on a free loopback port that tests can stop and restart."""

    def __init__(self, workdir: Path, extra_conf: str = "") -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.url = f"mqtt://{self.host}:{self.port}"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n{extra_conf}"
        )
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        wait_for_port(self.host, self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(autouse=True, scope="session")
def state_dir(tmp_path_factory) -> Path:
    """``listen`` spools undelivered MQTT messages under ``$XDG_STATE_HOME`` by default: give the tests (and the
    processes they start) their own, so no run inherits another's backlog."""
    directory = tmp_path_factory.mktemp("state")
    os.environ.pop("STATE_DIRECTORY", None)
    os.environ["XDG_STATE_HOME"] = str(directory)
    return directory


@pytest.fixture
def mosquitto(tmp_path: Path):
    """A running mosquitto broker (``.host``, ``.port``, ``.url``, ``.stop()``, ``.start()``)."""
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is not installed: run `apt-get install mosquitto` (the test command does)")
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def tls_broker(tmp_path):
    """mosquitto with a plain listener (``.url``) and a TLS one (``.tls_url``) whose server certificate is signed by
    a CA made here (``.ca``)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=audeep test CA")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    tls_port = free_port()
    broker = Mosquitto(tmp_path, extra_conf=(
        f"user root\nlistener {tls_port} 127.0.0.1\ncafile {tmp_path / 'ca.crt'}\n"
        f"certfile {tmp_path / 'server.crt'}\nkeyfile {tmp_path / 'server.key'}\n"))
    broker.start()
    wait_for_port(broker.host, tls_port)
    broker.tls_url = f"mqtts://127.0.0.1:{tls_port}"
    broker.ca = tmp_path / "ca.crt"
    yield broker
    broker.stop()


@pytest.fixture
def esc_mini() -> Path:
    """15 real ESC-10 clips (3 classes x 5 folds) in the ESC layout; see tests/data/README.md."""
    return DATA / "esc_mini"


def write_tone(path: Path, *, seconds: float = 2.0, fs: int = 16000, freq: float = 440.0,
               channels: int = 1, amplitude: float = 0.5, subtype: str = "PCM_16") -> Path:
    """Write a sine tone (with a little noise, so no band is empty) to ``path``."""
    t = np.arange(int(seconds * fs)) / fs
    rng = np.random.default_rng(0)
    x = amplitude * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    soundfile.write(str(path), np.repeat(x[:, None], channels, axis=1), fs, subtype=subtype)
    return path


@pytest.fixture
def tone_wav(tmp_path: Path):
    """Factory: ``tone_wav(name="tone.wav", seconds=2.0, fs=16000, freq=440.0, channels=1)`` -> Path."""

    def make(name: str = "tone.wav", **kwargs) -> Path:
        return write_tone(tmp_path / name, **kwargs)

    return make


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run the real ``audeep-edge`` entry point in this process: (exit status, stdout, stderr).

    ``capsys`` None: output is not captured (returned as empty strings)."""
    from audeep_edge.cli import main

    sys.argv = ["audeep-edge", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    if capsys is None:
        return code, "", ""
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tiny_spectrograms(path: Path) -> Path:
    """The committed ESC clips as auDeep spectrograms of 20 frames x 16 mel bands (6 chunks of 0.8 s per clip,
    clipped at -60 dB) in ``path``: small enough to convert a t-RAE on them in seconds."""
    code, _, err = cli(None, "preprocess", "--basedir", DATA / "esc_mini", "--parser", "esc", "--output", path,
                       "--mel-spectrum", 16, "--window-width", 0.08, "--window-overlap", 0.04, "--clip-below", -60,
                       "--fixed-length", 5, "--chunk-length", 0.8, "--chunk-count", 6)
    assert code == 0, err
    return path


def untrained_run(run_dir: Path, spectrograms: Path, *, num_layers: int, seed: int) -> Path:
    """A t-RAE run directory (``num_layers`` x 8 GRU, bidirectional decoder) on ``spectrograms``, with random
    weights: export and streaming are deterministic, so checking them needs no training."""
    import keras

    from audeep_edge.dataset import load_dataset
    from audeep_edge.training import runs
    from audeep_edge.training.autoencoders import TimeAutoencoderConfig, build_autoencoder

    ds = load_dataset(spectrograms)
    shape = tuple(ds.features.shape[1:])
    config = TimeAutoencoderConfig(num_layers=num_layers, num_units=8, bidirectional_decoder=True)
    runs.write_run_config(run_dir, config, shape, training={"inputs": [str(spectrograms)]}, frontend=ds.frontend)
    keras.utils.set_random_seed(seed)
    autoencoder = build_autoencoder(config, shape)
    # trained-looking biases, so that silent (all-zero) windows do not give all-zero embeddings
    autoencoder.representation.bias.assign(np.linspace(-0.5, 0.5, config.representation_size()))
    autoencoder.save_weights(run_dir / runs.WEIGHTS_FILE)
    return run_dir
