"""Autoencoder commands: ``t-rae``, ``f-rae`` and ``ft-rae``, each with ``train`` and ``generate``.

Option names and defaults are auDeep's (docs/audeep.md#training-options-and-defaults). ``--input`` takes
several files as auDeep does (``--input a.nc b.nc``) or repeated. auDeep's ``--tempdir`` (TFRecords) and ``--mask-silence`` (a no-op
there) have no counterpart.
"""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from audeep_edge.errors import DataError, ModelError

log = logging.getLogger(__name__)


class Cell(str, Enum):
    GRU = "GRU"
    LSTM = "LSTM"


# Options shared by the three train commands (typer reads each default per function).
INPUT = typer.Option(..., "--input", help="Spectrogram netCDF file(s) from preprocess; all of one shape.")
MORE_INPUTS = typer.Argument(None, metavar="[INPUT]...", help="More input files (auDeep's --input A B).")
RUN_NAME = typer.Option(Path("test-run"), "--run-name", help="Run directory to create (or to --continue).")
BATCH_SIZE = typer.Option(64, "--batch-size", min=1, help="Instances per optimisation step.")
NUM_EPOCHS = typer.Option(10, "--num-epochs", min=1, help="Epochs of the run in total.")
LEARNING_RATE = typer.Option(0.001, "--learning-rate", help="Adam learning rate.")
CHECKPOINTS_TO_KEEP = typer.Option(None, "--checkpoints-to-keep", min=1,
                                   help="Keep only the newest N epoch checkpoints (default: all).")
CONTINUE = typer.Option(False, "--continue", help="Resume the run from its last checkpoint (its architecture "
                        "is used; architecture options are ignored).")
CELL = typer.Option(Cell.GRU, "--cell", case_sensitive=False, help="Recurrent cell.")
KEEP_PROB = typer.Option(0.8, "--keep-prob", help="Keep probability of the dropout on every layer's input "
                         "and output.")
SEED = typer.Option(None, "--seed", help="Random seed (default: not reproducible, as auDeep).")
NUM_LAYERS = typer.Option(1, "--num-layers", min=1, help="Recurrent layers of the encoder and of the decoder.")
NUM_UNITS = typer.Option(16, "--num-units", min=1, help="Units per recurrent layer.")
BI_ENCODER = typer.Option(False, "--bidirectional-encoder", help="Bidirectional encoder.")
BI_DECODER = typer.Option(False, "--bidirectional-decoder", help="Bidirectional decoder (doubles the "
                          "representation size).")
ENCODER_NOISE = typer.Option(0.0, "--encoder-noise", help="Probability of zeroing an encoder input frame.")
FEED_PREVIOUS = typer.Option(0.0, "--feed-previous-prob", help="Probability of feeding the decoder its own "
                             "previous output instead of the previous target.")
WINDOW_WIDTH = typer.Option(32, "--freq-window-width", min=1, help="Frequency window width in bands.")
WINDOW_OVERLAP = typer.Option(24, "--freq-window-overlap", min=0, help="Frequency window overlap in bands.")


def _load_inputs(paths: list[Path]):
    """Concatenated spectrograms ``(N, T, F)`` of all input files, and the first file's front end."""
    import numpy as np

    from audeep_edge.dataset import load_dataset

    datasets = [load_dataset(p) for p in paths]
    first = datasets[0]
    for path, ds in zip(paths, datasets):
        if ds.features.ndim != 3:
            raise DataError(f"{path}: features {ds.feature_dims} are not spectrograms (time, freq)")
        if ds.feature_shape != first.feature_shape:
            raise DataError(f"{path}: spectrogram shape {ds.feature_shape} differs from {first.feature_shape} "
                            f"of {paths[0]}; all --input files must have one shape")
        if ds.frontend != first.frontend:
            log.warning("%s was extracted with other front-end settings than %s", path, paths[0])
    return np.concatenate([ds.features for ds in datasets]), first.frontend


def _keras_verbosity() -> int:
    """Keras progress bar on a terminal unless -q; the per-epoch log line is always written at INFO."""
    import sys

    return 1 if sys.stdout.isatty() and logging.getLogger().getEffectiveLevel() <= logging.INFO else 0


def _train(config, inputs: list[Path], run_name: Path, batch_size: int, num_epochs: int, learning_rate: float,
           checkpoints_to_keep: Optional[int], resume: bool, seed: Optional[int]) -> None:
    from audeep_edge.training.trainer import TrainingOptions, train_autoencoder

    options = TrainingOptions(batch_size=batch_size, num_epochs=num_epochs, learning_rate=learning_rate,
                              checkpoints_to_keep=checkpoints_to_keep, seed=seed)
    features, frontend = _load_inputs(inputs)
    log.info("training a %s on %d spectrograms of shape %s into %s", config.model_type, features.shape[0],
             features.shape[1:], run_name)
    report = train_autoencoder(features, config, run_name, options, resume=resume, frontend=frontend,
                               inputs=[str(p) for p in inputs], verbose=_keras_verbosity())
    rate = report.steady_examples_per_s
    log.info("done in %.1f s%s; weights in %s", report.wall_time_s,
             f" ({rate:.1f} examples/s after the first epoch)" if rate else "", run_name)


def t_rae_train(
    input_file: List[Path] = INPUT, more_inputs: Optional[List[Path]] = MORE_INPUTS,
    run_name: Path = RUN_NAME, batch_size: int = BATCH_SIZE, num_epochs: int = NUM_EPOCHS,
    learning_rate: float = LEARNING_RATE, checkpoints_to_keep: Optional[int] = CHECKPOINTS_TO_KEEP,
    resume: bool = CONTINUE, seed: Optional[int] = SEED,
    num_layers: int = NUM_LAYERS, num_units: int = NUM_UNITS, cell: Cell = CELL,
    bidirectional_encoder: bool = BI_ENCODER, bidirectional_decoder: bool = BI_DECODER,
    keep_prob: float = KEEP_PROB, encoder_noise: float = ENCODER_NOISE, feed_previous_prob: float = FEED_PREVIOUS,
) -> None:
    """Train a time-recurrent autoencoder (one representation per spectrogram)."""
    from audeep_edge.training.autoencoders.config import TimeAutoencoderConfig

    config = TimeAutoencoderConfig(num_layers=num_layers, num_units=num_units, cell=cell.value,
                                   bidirectional_encoder=bidirectional_encoder,
                                   bidirectional_decoder=bidirectional_decoder, keep_prob=keep_prob,
                                   encoder_noise=encoder_noise, feed_previous_prob=feed_previous_prob)
    _train(config, [*input_file, *(more_inputs or [])], run_name, batch_size, num_epochs, learning_rate,
           checkpoints_to_keep, resume, seed)


def f_rae_train(
    input_file: List[Path] = INPUT, more_inputs: Optional[List[Path]] = MORE_INPUTS,
    run_name: Path = RUN_NAME, batch_size: int = BATCH_SIZE, num_epochs: int = NUM_EPOCHS,
    learning_rate: float = LEARNING_RATE, checkpoints_to_keep: Optional[int] = CHECKPOINTS_TO_KEEP,
    resume: bool = CONTINUE, seed: Optional[int] = SEED,
    num_layers: int = NUM_LAYERS, num_units: int = NUM_UNITS, cell: Cell = CELL,
    bidirectional_encoder: bool = BI_ENCODER, bidirectional_decoder: bool = BI_DECODER,
    keep_prob: float = KEEP_PROB, encoder_noise: float = ENCODER_NOISE, feed_previous_prob: float = FEED_PREVIOUS,
    freq_window_width: int = WINDOW_WIDTH, freq_window_overlap: int = WINDOW_OVERLAP,
) -> None:
    """Train a frequency-recurrent autoencoder (one representation per spectrogram frame)."""
    from audeep_edge.training.autoencoders.config import FrequencyAutoencoderConfig

    config = FrequencyAutoencoderConfig(num_layers=num_layers, num_units=num_units, cell=cell.value,
                                        bidirectional_encoder=bidirectional_encoder,
                                        bidirectional_decoder=bidirectional_decoder, keep_prob=keep_prob,
                                        encoder_noise=encoder_noise, feed_previous_prob=feed_previous_prob,
                                        freq_window_width=freq_window_width,
                                        freq_window_overlap=freq_window_overlap)
    _train(config, [*input_file, *(more_inputs or [])], run_name, batch_size, num_epochs, learning_rate,
           checkpoints_to_keep, resume, seed)


def ft_rae_train(
    input_file: List[Path] = INPUT, more_inputs: Optional[List[Path]] = MORE_INPUTS,
    run_name: Path = RUN_NAME, batch_size: int = BATCH_SIZE, num_epochs: int = NUM_EPOCHS,
    learning_rate: float = LEARNING_RATE, checkpoints_to_keep: Optional[int] = CHECKPOINTS_TO_KEEP,
    resume: bool = CONTINUE, seed: Optional[int] = SEED, cell: Cell = CELL, keep_prob: float = KEEP_PROB,
    num_f_layers: int = typer.Option(1, "--num-f-layers", min=1, help="Layers of the frequency RNNs."),
    num_f_units: int = typer.Option(64, "--num-f-units", min=1, help="Units per frequency RNN layer."),
    num_t_layers: int = typer.Option(2, "--num-t-layers", min=1, help="Layers of the time RNNs."),
    num_t_units: int = typer.Option(128, "--num-t-units", min=1, help="Units per time RNN layer."),
    bidirectional_f_encoder: bool = typer.Option(False, "--bidirectional-f-encoder"),
    bidirectional_f_decoder: bool = typer.Option(False, "--bidirectional-f-decoder"),
    bidirectional_t_encoder: bool = typer.Option(False, "--bidirectional-t-encoder"),
    bidirectional_t_decoder: bool = typer.Option(False, "--bidirectional-t-decoder",
                                                 help="Doubles the representation size."),
    f_encoder_noise: float = typer.Option(0.0, "--f-encoder-noise", help="Frequency-encoder input noise."),
    t_encoder_noise: float = typer.Option(0.0, "--t-encoder-noise", help="Time-encoder input noise."),
    f_feed_previous_prob: float = typer.Option(0.0, "--f-feed-previous-prob"),
    t_feed_previous_prob: float = typer.Option(0.0, "--t-feed-previous-prob"),
    freq_window_width: int = WINDOW_WIDTH, freq_window_overlap: int = WINDOW_OVERLAP,
) -> None:
    """Train a frequency-time autoencoder (one representation per spectrogram)."""
    from audeep_edge.training.autoencoders.config import FrequencyTimeAutoencoderConfig

    config = FrequencyTimeAutoencoderConfig(
        cell=cell.value, keep_prob=keep_prob, num_f_layers=num_f_layers, num_f_units=num_f_units,
        num_t_layers=num_t_layers, num_t_units=num_t_units, bidirectional_f_encoder=bidirectional_f_encoder,
        bidirectional_f_decoder=bidirectional_f_decoder, bidirectional_t_encoder=bidirectional_t_encoder,
        bidirectional_t_decoder=bidirectional_t_decoder, f_encoder_noise=f_encoder_noise,
        t_encoder_noise=t_encoder_noise, f_feed_previous_prob=f_feed_previous_prob,
        t_feed_previous_prob=t_feed_previous_prob, freq_window_width=freq_window_width,
        freq_window_overlap=freq_window_overlap)
    _train(config, [*input_file, *(more_inputs or [])], run_name, batch_size, num_epochs, learning_rate,
           checkpoints_to_keep, resume, seed)


def _generate_command(model_type: str, default_batch_size: int):
    def generate(
        model_dir: Path = typer.Option(..., "--model-dir", help="Run directory (the --run-name of train)."),
        input_path: Path = typer.Option(..., "--input", help="Spectrogram netCDF file, or audio: a file, a folder "
                                        "or a data set directory (extracted with the run's front end)."),
        output: Path = typer.Option(..., "--output", help="Output netCDF file of representations."),
        batch_size: int = typer.Option(default_batch_size, "--batch-size", min=1, help="Instances per batch."),
        parser: Optional[str] = typer.Option(None, "--parser", help="Parser for an audio directory (default: "
                                             "auto-detect; no-metadata for a plain folder)."),
    ) -> None:
        from audeep_edge.training.generate import generate_dataset
        from audeep_edge.training.runs import read_run_config

        trained = read_run_config(model_dir)["model_type"]
        if trained != model_type:
            raise ModelError(f"--model-dir {model_dir} holds a {trained} run; use `audeep-edge {trained} generate`")
        result = generate_dataset(model_dir, input_path, batch_size=batch_size, parser=parser)
        output.parent.mkdir(parents=True, exist_ok=True)
        result.save(output)
        log.info("wrote %d representations %s to %s", result.num_instances, result.feature_shape, output)

    generate.__doc__ = f"Write the {model_type} representation of every instance, keeping all metadata."
    return generate


def register(app: typer.Typer) -> None:
    """Add the ``t-rae``, ``f-rae`` and ``ft-rae`` command groups."""
    commands = {
        "t-rae": (t_rae_train, 500, "Time-recurrent autoencoder (auDeep's default)."),
        "f-rae": (f_rae_train, 64, "Frequency-recurrent autoencoder (one vector per frame)."),
        "ft-rae": (ft_rae_train, 500, "Frequency-time recurrent autoencoder."),
    }
    for name, (train, generate_batch, help_text) in commands.items():
        sub = typer.Typer(help=help_text, no_args_is_help=True)
        sub.command("train")(train)
        sub.command("generate")(_generate_command(name, generate_batch))
        app.add_typer(sub, name=name)
