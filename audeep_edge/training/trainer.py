"""Autoencoder training: Adam, gradient values clipped to [-2, 2], RMSE, a checkpoint per epoch
(docs/audeep.md#training-options-and-defaults).

Works on numpy arrays and imports only keras and numpy, so the GPU script runs it without TensorFlow
or xarray. An epoch is one shuffled pass over the instances (``ceil(N / batch_size)`` steps, as many
as auDeep's queue-based "epoch").
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from audeep_edge.errors import ConfigError, DataError
from audeep_edge.training import runs
from audeep_edge.training.autoencoders import AutoencoderConfig, build_autoencoder
from audeep_edge.training.autoencoders.agreement import AgreementAutoencoder
from audeep_edge.training.views import ViewSettings, view_pairs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOptions:
    """auDeep's training options (defaults from docs/audeep.md#training-options-and-defaults).

    num_epochs : total number of epochs of the run (``--continue`` trains the missing ones).
    checkpoints_to_keep : keep the newest this many checkpoints; None keeps all.
    seed : seeds Python, numpy and the backend (None: not reproducible, as auDeep).
    """

    batch_size: int = 64
    num_epochs: int = 10
    learning_rate: float = 0.001
    checkpoints_to_keep: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate must be positive, got {self.learning_rate}")
        if self.checkpoints_to_keep is not None and self.checkpoints_to_keep < 1:
            raise ConfigError(f"--checkpoints-to-keep must be at least 1, got {self.checkpoints_to_keep}")


@dataclass(frozen=True)
class EpochRecord:
    epoch: int            # 1-based
    loss: float           # mean loss over the epoch's batches (RMSE; with agreement + weight · NT-Xent)
    seconds: float        # wall time of the epoch (the first one includes compilation)
    examples_per_s: float


@dataclass
class TrainingReport:
    run_dir: Path
    num_examples: int
    wall_time_s: float
    epochs: list[EpochRecord] = field(default_factory=list)

    @property
    def steady_examples_per_s(self) -> float | None:
        """Median throughput over the epochs after the first (compilation); None with a single epoch."""
        rates = [e.examples_per_s for e in self.epochs[1:]]
        return statistics.median(rates) if rates else None

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "num_examples": self.num_examples, "wall_time_s": self.wall_time_s,
                "steady_examples_per_s": self.steady_examples_per_s, "epochs": [asdict(e) for e in self.epochs]}


def check_features(features: np.ndarray, source: str = "--input") -> np.ndarray:
    """Spectrograms as float32 ``(N, T, F)``; DataError naming ``source`` when empty, mis-shaped or not finite."""
    features = np.asarray(features)
    if features.ndim != 3 or features.shape[0] == 0:
        raise DataError(f"{source}: expected spectrograms of shape (instances, time, freq), got {features.shape}")
    features = features.astype(np.float32, copy=False)
    if not np.all(np.isfinite(features)):
        raise DataError(f"{source}: the spectrograms contain NaN or infinite values; re-run preprocess")
    return features


def save_final_weights(model: keras.Model, config: AutoencoderConfig, path: Path) -> None:
    """Write the model weights without the optimizer state (a third of a checkpoint's size)."""
    plain = build_autoencoder(config, model.spectrogram_shape)
    plain.set_weights(model.get_weights())
    plain.save_weights(path)


class _EpochLog(keras.callbacks.Callback):
    """Times every epoch and logs ``epoch i/n: loss, seconds, examples/s``."""

    def __init__(self, num_examples: int, num_epochs: int) -> None:
        super().__init__()
        self.num_examples, self.num_epochs = num_examples, num_epochs
        self.records: list[EpochRecord] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        record = EpochRecord(epoch + 1, float(logs["loss"]), seconds, self.num_examples / seconds)
        self.records.append(record)
        logs.update(seconds=seconds, examples_per_s=record.examples_per_s)   # for the CSV and event callbacks
        log.info("epoch %d/%d: loss %.5f, %.1f s, %.1f examples/s", record.epoch, self.num_epochs, record.loss,
                 seconds, record.examples_per_s)


class _Checkpoints(keras.callbacks.Callback):
    """Writes ``checkpoints/epoch-NNNN.weights.h5`` (weights and Adam state) and prunes old ones."""

    def __init__(self, run_dir: Path, keep: int | None) -> None:
        super().__init__()
        self.run_dir, self.keep = run_dir, keep

    def on_epoch_end(self, epoch, logs=None):
        self.model.save_weights(runs.checkpoint_path(self.run_dir, epoch + 1))
        if self.keep is not None:
            for _, path in runs.list_checkpoints(self.run_dir)[:-self.keep]:
                path.unlink()


class _TensorBoardScalars(keras.callbacks.Callback):
    """Per-epoch scalars as TensorBoard events (TensorFlow backend).

    Written with ``tf.summary.write`` and the scalars plugin's metadata, which, unlike
    ``keras.callbacks.TensorBoard``, does not need the ``tensorboard`` package to be installed.
    """

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(log_dir))
        plugin = tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars")
        self._metadata = tf.compat.v1.SummaryMetadata(plugin_data=plugin)

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default():
            for name, value in (logs or {}).items():
                self._tf.summary.write(f"epoch_{name}", self._tf.constant(float(value)), step=epoch + 1,
                                       metadata=self._metadata)
        self._writer.flush()

    def on_train_end(self, logs=None):
        self._writer.close()


def _callbacks(run_dir: Path, options: TrainingOptions, num_examples: int, resume: bool) -> list:
    logs = run_dir / runs.LOG_DIR
    for folder in (logs, run_dir / runs.CHECKPOINT_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    callbacks = [_EpochLog(num_examples, options.num_epochs), _Checkpoints(run_dir, options.checkpoints_to_keep),
                 keras.callbacks.CSVLogger(str(logs / "history.csv"), append=resume),
                 keras.callbacks.TerminateOnNaN()]
    if keras.backend.backend() == "tensorflow":
        callbacks.append(_TensorBoardScalars(logs))
    else:
        log.debug("TensorBoard events need the TensorFlow backend; %s has the loss per epoch", logs / "history.csv")
    return callbacks


def _prepare_run(run_dir: Path, config: AutoencoderConfig, input_shape: tuple[int, int], options: TrainingOptions,
                 resume: bool, frontend: dict | None, inputs: Sequence[str],
                 record: dict | None = None) -> tuple[AutoencoderConfig, int]:
    """Create or reopen the run (``record``: more training settings for ``config.json``); returns the model
    configuration and the number of epochs already done."""
    if not resume:
        if (run_dir / runs.CONFIG_FILE).exists() or runs.list_checkpoints(run_dir):
            raise ConfigError(f"--run-name {run_dir}: a training run already exists there; pass --continue to "
                              "resume it or choose another --run-name")
        training = {**asdict(options), "inputs": list(inputs), **(record or {})}
        runs.write_run_config(run_dir, config, input_shape, training=training, frontend=frontend)
        return config, 0
    content = runs.read_run_config(run_dir)
    if tuple(content["input_shape"]) != tuple(input_shape):
        raise DataError(f"--input: spectrograms of shape {tuple(input_shape)} cannot continue {run_dir}, "
                        f"which was trained on {tuple(content['input_shape'])}")
    log.info("continuing %s; its stored architecture is used and architecture options are ignored", run_dir)
    (run_dir / runs.WEIGHTS_FILE).unlink(missing_ok=True)   # stale until this continuation finishes
    checkpoints = runs.list_checkpoints(run_dir)
    model_config = runs.model_config(content)
    training = content.get("training") or {}
    if options.num_epochs > training.get("num_epochs", 0):  # continued past its planned length: say so
        runs.write_run_config(run_dir, model_config, input_shape, frontend=content.get("frontend"),
                              training={**training, "num_epochs": options.num_epochs})
    return model_config, checkpoints[-1][0] if checkpoints else 0


def train_autoencoder(features: np.ndarray, config: AutoencoderConfig, run_dir: str | Path,
                      options: TrainingOptions = TrainingOptions(), *, resume: bool = False,
                      frontend: dict | None = None, inputs: Sequence[str] = (), verbose: int = 1,
                      callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainingReport:
    """Train (or, with ``resume``, continue) an autoencoder on spectrograms and fill ``run_dir``.

    Parameters
    ----------
    features : np.ndarray [shape=(N, T, F)], spectrograms in [-1, 1].
    config : the model; ignored when resuming (the run's own configuration is used).
    frontend : front-end settings of the spectrograms, stored in ``config.json`` for ``generate``/export.
    inputs : names of the input files, recorded in ``config.json``.
    verbose : Keras progress display (0 silent, 1 progress bar, 2 one line per epoch).
    callbacks : more Keras callbacks (e.g. a progress display of the caller's).

    Raises
    ------
    ConfigError : the run exists and ``resume`` is False, or training diverged.
    ModelError / DataError : nothing to resume, or spectrograms that do not fit the run.
    """
    features = check_features(features)
    run_dir = Path(run_dir)
    input_shape = features.shape[1:]
    config, done = _prepare_run(run_dir, config, input_shape, options, resume, frontend, inputs)
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    model = build_autoencoder(config, input_shape)
    report = _fit(model, features, run_dir, options, done, features.shape[0], resume, verbose, callbacks,
                  batch_size=options.batch_size, shuffle=True)
    save_final_weights(model, config, run_dir / runs.WEIGHTS_FILE)
    return report


def _fit(model: keras.Model, data, run_dir: Path, options: TrainingOptions, done: int, examples_per_epoch: int,
         resume: bool, verbose: int, callbacks: Sequence[keras.callbacks.Callback], **fit_args) -> TrainingReport:
    """Compile ``model`` with auDeep's Adam, restore checkpoint ``done`` (weights and Adam state) when there is
    one, and fit ``data`` up to ``options.num_epochs``, a checkpoint per epoch."""
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate, epsilon=1e-8, clipvalue=2.0))
    if done:
        model.optimizer.build(model.trainable_variables)   # so that the checkpoint restores Adam's state too
        model.load_weights(runs.checkpoint_path(run_dir, done))
    report = TrainingReport(run_dir, examples_per_epoch, 0.0)
    if done >= options.num_epochs:
        log.info("%s already has %d of %d epochs; nothing to train", run_dir, done, options.num_epochs)
        return report
    run_callbacks = _callbacks(run_dir, options, examples_per_epoch, resume)
    start = time.perf_counter()
    history = model.fit(data, epochs=options.num_epochs, initial_epoch=done, callbacks=[*run_callbacks, *callbacks],
                        verbose=verbose, **fit_args)
    report.wall_time_s = time.perf_counter() - start
    report.epochs = run_callbacks[0].records
    if not np.isfinite(history.history["loss"][-1]):
        raise ConfigError(f"training diverged (loss {history.history['loss'][-1]}) in {run_dir}; "
                          "lower --learning-rate")
    return report


@dataclass(frozen=True)
class AgreementOptions:
    """Agreement training (``autoencoders.agreement``): ``loss = rmse + weight · nt_xent`` at ``temperature``,
    ``steps_per_epoch`` batches of view pairs per epoch, views drawn with ``views``."""

    weight: float = 0.05
    temperature: float = 0.1
    steps_per_epoch: int = 150
    views: ViewSettings = ViewSettings()

    def __post_init__(self) -> None:
        if not self.weight >= 0 or not self.temperature > 0 or self.steps_per_epoch < 1:
            raise ConfigError(f"agreement settings out of range: weight {self.weight}, temperature "
                              f"{self.temperature}, steps per epoch {self.steps_per_epoch}")


class _ViewPairs(keras.utils.PyDataset):
    """``steps`` batches ``(batch_size, 2, T, F)`` of view pairs per epoch; batch ``i`` of epoch ``e`` is drawn
    with the seed ``(seed, e, i)``, so a resumed run sees what an uninterrupted one would have."""

    def __init__(self, windows: np.ndarray, batch_size: int, steps: int, seed: int, views: ViewSettings,
                 epoch: int) -> None:
        super().__init__()
        self.windows, self.batch_size, self.steps, self.seed, self.views = windows, batch_size, steps, seed, views
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return (view_pairs(self.windows, self.batch_size, rng, self.views),)

    def on_epoch_end(self) -> None:
        self.epoch += 1


def train_agreement(windows: np.ndarray, start: str | Path, run_dir: str | Path, options: TrainingOptions,
                    agreement: AgreementOptions = AgreementOptions(), *, resume: bool = False, verbose: int = 1,
                    callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainingReport:
    """Continue the t-RAE of the run ``start`` with agreement between views (or, with ``resume``, continue
    ``run_dir``) and fill ``run_dir``; its ``autoencoder.weights.h5`` loads as any t-RAE run's.

    Parameters
    ----------
    windows : np.ndarray [shape=(N, T, F)], the t-RAE's windows in [-1, 1] (may be memory-mapped).
    start : a forward-only GRU t-RAE run whose weights are the starting point and whose front end is kept.

    Raises
    ------
    ConfigError : not such a t-RAE, the run exists and ``resume`` is False, or training diverged.
    ModelError / DataError : unreadable ``start`` or windows that do not fit it.
    """
    windows = check_features(windows, "windows")
    run_dir, start = Path(run_dir), Path(start)
    content = runs.read_run_config(start)
    if tuple(content["input_shape"]) != windows.shape[1:]:
        raise DataError(f"windows of shape {windows.shape[1:]} do not fit {start}, which reads "
                        f"{tuple(content['input_shape'])}")
    record = {"agreement": asdict(agreement), "start": str(start)}
    config, done = _prepare_run(run_dir, runs.model_config(content), windows.shape[1:], options, resume,
                                content.get("frontend"), [str(runs.weights_file(start))], record)
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    model = AgreementAutoencoder(build_autoencoder(config, windows.shape[1:]), weight=agreement.weight,
                                 temperature=agreement.temperature)
    if not done:
        model.autoencoder.load_weights(runs.weights_file(start))
    pairs = _ViewPairs(windows, options.batch_size, agreement.steps_per_epoch, options.seed or 0, agreement.views,
                       done)
    report = _fit(model, pairs, run_dir, options, done, options.batch_size * agreement.steps_per_epoch, resume,
                  verbose, callbacks)
    save_final_weights(model.autoencoder, config, run_dir / runs.WEIGHTS_FILE)
    return report
