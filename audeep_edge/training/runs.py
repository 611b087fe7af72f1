"""Run directories of autoencoder training (docs/design.md, "Training run contract").

::

    RUN/config.json                       model type, architecture, input shape [T, F], front end, training
    RUN/checkpoints/epoch-NNNN.weights.h5 weights and Adam state after epoch NNNN (1-based; --continue)
    RUN/logs/                             TensorBoard events (TensorFlow backend) and history.csv
    RUN/autoencoder.weights.h5            final weights (without optimizer state)

Weight files are Keras HDF5 and load on any backend: a run trained on JAX (GPU) loads here on TensorFlow.
Imports keras lazily (reading a configuration needs only the standard library).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.training.autoencoders.config import AutoencoderConfig, config_from_dict

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "autoencoder.weights.h5"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
_CHECKPOINT = re.compile(r"epoch-(\d{4,})\.weights\.h5$")


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch-{epoch:04d}.weights.h5"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every checkpoint of the run, by increasing epoch."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = [(int(m.group(1)), p) for p in folder.glob("epoch-*.weights.h5") if (m := _CHECKPOINT.search(p.name))]
    return sorted(found)


def write_run_config(run_dir: str | Path, config: AutoencoderConfig, input_shape: tuple[int, int], *,
                     training: dict[str, Any], frontend: dict | None) -> dict[str, Any]:
    """Write ``config.json`` (creating the run directory) and return its content."""
    import keras

    from audeep_edge import __version__

    content = {
        "schema_version": SCHEMA_VERSION,
        "model_type": config.model_type,
        "architecture": config.to_dict(),
        "input_shape": [int(n) for n in input_shape],
        "representation_size": config.representation_size(),
        "frontend": frontend,
        "training": training,
        "versions": {"audeep_edge": __version__, "keras": keras.__version__, "backend": keras.backend.backend()},
    }
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps(content, indent=2) + "\n")
    return content


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The content of ``RUN/config.json``, checked; ModelError naming the file when absent or invalid."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{run_dir}: not a training run (no {CONFIG_FILE}); pass the --run-name of a t-rae, "
                         "f-rae or ft-rae train command")
    try:
        content = json.loads(path.read_text())
        model_config(content)
        shape = content["input_shape"]
        if len(shape) != 2 or content.get("schema_version") != SCHEMA_VERSION:
            raise ValueError("unexpected input_shape or schema_version")
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ModelError(f"{path}: invalid run configuration ({exc})") from None
    return content


def model_config(run_config: dict[str, Any]) -> AutoencoderConfig:
    """The typed autoencoder configuration stored in a run configuration."""
    return config_from_dict(run_config["model_type"], run_config["architecture"])


def weights_file(run_dir: str | Path) -> Path:
    """The weights ``generate`` and export use: the final file, else the latest checkpoint (warning)."""
    run_dir = Path(run_dir)
    final = run_dir / WEIGHTS_FILE
    if final.is_file():
        return final
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise ModelError(f"{run_dir}: the run has no weights yet ({WEIGHTS_FILE} or {CHECKPOINT_DIR}/); "
                         "train it first or resume it with --continue")
    epoch, path = checkpoints[-1]
    log.warning("%s: training did not finish; using the checkpoint of epoch %d", run_dir, epoch)
    return path


def load_autoencoder(run_dir: str | Path, *, unroll: bool = False, weights: str | Path | None = None):
    """The run's autoencoder with its weights (``weights`` overrides :func:`weights_file`).

    Returns an :class:`~audeep_edge.training.autoencoders.Autoencoder` (a ``keras.Model``).
    """
    from audeep_edge.training.autoencoders import build_autoencoder

    content = read_run_config(run_dir)
    model = build_autoencoder(model_config(content), tuple(content["input_shape"]), unroll=unroll)
    path = Path(weights) if weights is not None else weights_file(run_dir)
    try:
        model.load_weights(path)
    except Exception as exc:  # h5py/keras raise many types for a corrupt or mismatching file
        raise ModelError(f"{path}: cannot load weights into the {content['model_type']} of "
                         f"{Path(run_dir) / CONFIG_FILE} ({type(exc).__name__}: {exc})") from None
    return model


def load_encoder(run_dir: str | Path, *, unroll: bool = False):
    """The run's encoder as a ``keras.Model`` with the trained weights.

    Input ``"spectrogram"`` ``(B, T, F)`` float32 in [-1, 1] (``T, F`` = ``config.json`` ``input_shape``);
    output dict ``{"embedding": (B, D)}`` with ``D`` = ``representation_size`` (f-RAE: ``(B, T, D)``).
    The graph holds only recurrent layers and a tanh Dense; ``unroll=True`` unrolls the recurrent layers
    over the T frames (same weights, same outputs), which full-int8 TFLite conversion needs.
    """
    from audeep_edge.training.autoencoders import encoder_model

    return encoder_model(load_autoencoder(run_dir, unroll=unroll))
