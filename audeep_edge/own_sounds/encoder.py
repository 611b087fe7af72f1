"""``train --unlabelled``: a new encoder, trained without labels on the user's audio with the base bundle's
autoencoder settings, then quantized to a bundle (with its parity report). Needs the ``[train]`` extra.

The autoencoder learns from the same windows ``listen`` feeds the encoder (:mod:`.clips`), so what it learns to
encode is exactly what the device will show it. The run lives in the work directory: checkpoints after every
epoch, so an interrupted training continues where it stopped.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from audeep_edge.bundle import NORMALIZATION, Bundle
from audeep_edge.errors import ConfigError, ModelError
from audeep_edge.progress import progress_bar

log = logging.getLogger(__name__)

WINDOWS_FILE = "windows.nc"


def autoencoder_settings(bundle: Bundle) -> dict:
    """The base bundle's ``training.autoencoder`` record (model type, architecture, epochs, batch, rate).

    Raises
    ------
    ModelError : the bundle does not record how its encoder was trained.
    """
    record = (bundle.manifest.get("training") or {}).get("autoencoder")
    if not isinstance(record, dict) or "model_type" not in record or "architecture" not in record:
        raise ModelError(f"bundle {bundle.path} does not record its autoencoder settings (bundles from "
                         "`audeep-edge quantize` do); --unlabelled needs them, or pass another --bundle")
    if bundle.normalization != NORMALIZATION:
        raise ModelError(f"bundle {bundle.path} feeds its encoder {bundle.normalization!r} windows; autoencoders "
                         f"train on {NORMALIZATION!r} ones: pass another --bundle")
    return record


def require_training_extra() -> None:
    """ConfigError naming the extra unless Keras and TensorFlow are installed; Keras will load on TensorFlow
    (the converter's backend)."""
    from audeep_edge.training.quantize.bundler import use_tensorflow_backend

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("tensorflow") is None:
        raise ConfigError("--unlabelled trains an autoencoder and needs the [train] extra: "
                          "pip install 'audeep-edge[train]'")
    use_tensorflow_backend()


def _frontend_record(bundle: Bundle) -> dict:
    """The run's ``frontend`` (settings + frame geometry), as ``preprocess`` stores it."""
    from audeep_edge.dataset.preprocess import frontend_attribute

    return json.loads(frontend_attribute(bundle.frontend, bundle.geometry))


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU"


def _epoch_callback(advance):
    import keras

    class Advance(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            advance()

    return Advance()


def train_autoencoder_run(bundle: Bundle, windows: np.ndarray, names: list[str], run_dir: Path, *, epochs: int,
                          seed: int) -> Path:
    """Train (or continue) the autoencoder of ``run_dir`` on windows [shape=(N, T, F)] named by their clip.

    Returns the run directory, holding ``autoencoder.weights.h5`` after ``epochs`` epochs.
    """
    from audeep_edge.dataset.model import DataSet
    from audeep_edge.training import runs
    from audeep_edge.training.autoencoders import config_from_dict
    from audeep_edge.training.trainer import TrainingOptions, train_autoencoder

    settings = autoencoder_settings(bundle)
    done = runs.list_checkpoints(run_dir)[-1][0] if runs.list_checkpoints(run_dir) else 0
    if done >= epochs and (run_dir / runs.WEIGHTS_FILE).is_file():
        log.info("%s already has %d epochs", run_dir, done)
        return run_dir
    data_file = (run_dir.parent / WINDOWS_FILE).resolve()
    seen: Counter = Counter()
    chunk_nrs = []
    for name in names:
        chunk_nrs.append(seen[name])
        seen[name] += 1
    DataSet(windows, ["time", "freq"], names, chunk_nrs=chunk_nrs,
            attrs={"frontend": json.dumps(_frontend_record(bundle))}).save(data_file)
    config = config_from_dict(settings["model_type"], settings["architecture"])
    options = TrainingOptions(batch_size=min(int(settings.get("batch_size", 64)), len(windows)), num_epochs=epochs,
                              learning_rate=float(settings.get("learning_rate", 0.001)), checkpoints_to_keep=1,
                              seed=seed)
    log.info("training a %s %s on %d windows for %d epochs on the %s", config.model_type,
             ", ".join(f"{k}={v}" for k, v in settings["architecture"].items()), len(windows), epochs, _device())
    with progress_bar(epochs - done, "autoencoder epochs") as advance:
        train_autoencoder(windows, config, run_dir, options, resume=(run_dir / runs.CONFIG_FILE).is_file(),
                          frontend=_frontend_record(bundle), inputs=[str(data_file)], verbose=0,
                          callbacks=[_epoch_callback(advance)])
    return run_dir


def quantize_encoder(run_dir: Path, output: Path, precision: str, *, hop_seconds: float, data_name: str,
                     data_license: str) -> dict:
    """The run's encoder as a bundle at ``precision`` (no head), calibrated and checked on its own training
    windows; returns the parity report. An encoder bundle newer than the run's weights is reused."""
    from audeep_edge.training import runs
    from audeep_edge.training.quantize.bundle_writer import PARITY_FILE
    from audeep_edge.training.quantize.bundler import QuantizeOptions, quantize_run

    if (output / PARITY_FILE).is_file() and (output / PARITY_FILE).stat().st_mtime > \
            (run_dir / runs.WEIGHTS_FILE).stat().st_mtime:
        return json.loads((output / PARITY_FILE).read_text())
    return quantize_run(QuantizeOptions(run_dir=run_dir, precision=precision, output=output, data_name=data_name,
                                        data_license=data_license, hop_seconds=hop_seconds))
