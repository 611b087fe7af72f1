"""Learner commands: ``mlp evaluate|predict|train`` and ``svm evaluate|predict``
(docs/audeep.md#learners-and-evaluation).

CLI options -> :mod:`audeep_edge.training.learner_data` (netCDF data sets -> vectors, class indices, splits),
:mod:`audeep_edge.training.evaluation` and :mod:`audeep_edge.training.learners`; tables and plots
(:mod:`audeep_edge.training.confusion`) list classes by nominal name, as auDeep does.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from audeep_edge.commands.data import _split_values  # one parser for "train,devel" / repeated options
from audeep_edge.errors import ConfigError, DataError
from audeep_edge.training.learners import MLPOptions

log = logging.getLogger(__name__)

mlp_app = typer.Typer(help="auDeep's multilayer perceptron on learned representations.", no_args_is_help=True)
svm_app = typer.Typer(help="Linear SVM (LIBLINEAR) on learned representations.", no_args_is_help=True)

_DEFAULTS = MLPOptions()
TRAIN_PARTITIONS = typer.Option(None, "--train-partitions", metavar="PARTITION",
                                help="Train on these partitions (train, devel, test; repeat or comma-separate).")
EVAL_PARTITIONS = typer.Option(None, "--eval-partitions", metavar="PARTITION",
                               help="Evaluate/predict these partitions (repeat or comma-separate).")
UPSAMPLE = typer.Option(False, "--upsample", help="Balance the training classes by repeating instances.")
MAJORITY_VOTE = typer.Option(False, "--majority-vote",
                             help="One label per file: majority vote over its chunks (default: every chunk counts).")
SEED = typer.Option(None, "--seed", min=0, help="Random seed (weights, dropout, upsampling); default: random, logged.")
SHUFFLE = typer.Option(False, "--shuffle", hidden=True,
                       help="Accepted for auDeep command lines; full-batch training makes it a no-op.")
NUM_LAYERS = typer.Option(_DEFAULTS.num_layers, "--num-layers", help="Hidden layers.")
NUM_UNITS = typer.Option(_DEFAULTS.num_units, "--num-units", help="Units per hidden layer.")
KEEP_PROB = typer.Option(_DEFAULTS.keep_prob, "--keep-prob", help="Dropout keep probability of the hidden layers.")
NUM_EPOCHS = typer.Option(_DEFAULTS.num_epochs, "--num-epochs", help="Epochs (one full-batch Adam step each).")
LEARNING_RATE = typer.Option(_DEFAULTS.learning_rate, "--learning-rate", help="Adam learning rate.")
RELU_LOGITS = typer.Option(_DEFAULTS.relu_logits, "--relu-logits/--linear-logits",
                           help="auDeep's ReLU on the output logits (a quirk; linear logits by default).")
COMPLEXITY = typer.Option(..., "--complexity", "-C", help="SVM complexity C (required, as in auDeep).")


# --- options -> learners -------------------------------------------------------------------------------
def _partition_codes(values: list[str] | None) -> list[int]:
    from audeep_edge.dataset.model import partition_code

    return sorted({partition_code(v) for v in _split_values(values)})


def _seed(seed: int | None, level: int = logging.INFO) -> int:
    """``seed``, or a random one that is logged so the run can be repeated."""
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
        log.log(level, "seed %d (pass --seed %d to repeat this run)", seed, seed)
    return seed


def _mlp(num_layers, num_units, keep_prob, num_epochs, learning_rate, relu_logits):
    from audeep_edge.training.learners import MLP

    return MLP(MLPOptions(num_layers=num_layers, num_units=num_units, keep_prob=keep_prob, num_epochs=num_epochs,
                          learning_rate=learning_rate, relu_logits=relu_logits))


# --- output --------------------------------------------------------------------------------------------
def _write_text(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


def _plot(path: Path, matrix: np.ndarray, names: list[str], title: str) -> None:
    """Row-normalised confusion matrix (classes by nominal name) as a PNG."""
    from audeep_edge.training.confusion import by_name, plot_confusion

    try:
        plot_confusion(path, *by_name(matrix, names), title, normalise=True)
    except OSError as exc:
        raise ConfigError(f"--confusion-png {path}: cannot write ({exc.strerror or exc})") from None
    except ValueError as exc:  # matplotlib: an unknown image format from the file name's suffix
        raise ConfigError(f"--confusion-png {path}: {exc}") from None


# --- evaluate ------------------------------------------------------------------------------------------
def _evaluate(ctx: typer.Context, learner, learner_info: dict, input_file: Path, cross_validate: bool,
              train_partitions, eval_partitions, upsample: bool, majority_vote: bool, repeat: int,
              seed: int | None, quiet: bool, output_json: Path | None, confusion_png: Path | None) -> None:
    from audeep_edge.training.confusion import numbered_confusion_text
    from audeep_edge.training.evaluation import evaluate
    from audeep_edge.training.learner_data import class_indices, class_names, evaluation_splits, load_vectors

    quiet = quiet or bool(ctx.find_root().params.get("quiet"))
    level = logging.DEBUG if quiet else logging.INFO
    ds = load_vectors(input_file)
    names = class_names(ds, input_file)
    splits = evaluation_splits(ds, input_file, cross_validate, _partition_codes(train_partitions),
                               _partition_codes(eval_partitions))
    used = np.any([s.train | s.evaluate for s in splits], axis=0)
    labels = class_indices(ds, names, input_file, used)
    if not majority_vote and len(set(ds.filenames)) < ds.num_instances:
        log.log(level, "several chunks per file: every chunk is scored on its own (--majority-vote votes per file)")
    seed = _seed(seed, level)
    result = evaluate(learner, ds.features, labels, ds.filenames, splits, len(names), repeat=repeat,
                      majority_vote=majority_vote, upsample=upsample, seed=seed,
                      on_score=lambda s: log.log(level, "repeat %d, %s: accuracy %.2f%%, UAR %.2f%%",
                                                 s.repeat, s.split, 100 * s.accuracy, 100 * s.uar))
    if quiet:
        typer.echo(f"{result.accuracy:.4f},{result.uar:.4f}")
    else:
        what = f"{len(splits)} fold(s)" if cross_validate else splits[0].name
        typer.echo(f"accuracy {100 * result.accuracy:.2f}% (std {100 * result.accuracy_std:.2f}%), "
                   f"UAR {100 * result.uar:.2f}% (std {100 * result.uar_std:.2f}%) over {what}, {repeat} repeat(s)")
        typer.echo(numbered_confusion_text(result.confusion, names))
    if output_json is not None:
        report = {"input": str(input_file), "mode": "cross-validation" if cross_validate else "partitions",
                  "majority_vote": majority_vote, "upsample": upsample, "repeat": repeat, "learner": learner_info,
                  **result.to_dict(names)}
        _write_text(output_json, json.dumps(report, indent=1) + "\n", "--output-json")
    if confusion_png is not None:
        _plot(confusion_png, result.confusion, names,
              f"accuracy {100 * result.accuracy:.1f}%, UAR {100 * result.uar:.1f}%")


INPUT = typer.Option(..., "--input", help="netCDF data set of representations (one vector per instance).")
CROSS_VALIDATE = typer.Option(False, "--cross-validate", help="Evaluate with the data set's cross-validation folds.")
REPEAT = typer.Option(1, "--repeat", min=1, help="Repeat the whole evaluation N times.")
QUIET = typer.Option(False, "--quiet", help="Print only 'accuracy,uar' (fractions) to stdout, as auDeep.")
OUTPUT_JSON = typer.Option(None, "--output-json", help="Write every score (per repeat and split), means and std.")
CONFUSION_PNG = typer.Option(None, "--confusion-png", help="Write the row-normalised confusion matrix as a PNG.")


def mlp_evaluate(ctx: typer.Context, input_file: Path = INPUT, cross_validate: bool = CROSS_VALIDATE,
                 train_partitions: Optional[List[str]] = TRAIN_PARTITIONS,
                 eval_partitions: Optional[List[str]] = EVAL_PARTITIONS, upsample: bool = UPSAMPLE,
                 majority_vote: bool = MAJORITY_VOTE, repeat: int = REPEAT, seed: Optional[int] = SEED,
                 quiet: bool = QUIET, output_json: Optional[Path] = OUTPUT_JSON,
                 confusion_png: Optional[Path] = CONFUSION_PNG, shuffle: bool = SHUFFLE,
                 num_layers: int = NUM_LAYERS, num_units: int = NUM_UNITS, keep_prob: float = KEEP_PROB,
                 num_epochs: int = NUM_EPOCHS, learning_rate: float = LEARNING_RATE,
                 relu_logits: bool = RELU_LOGITS) -> None:
    """Cross-validate or partition-evaluate the MLP: accuracy, UAR and confusion matrix."""
    learner = _mlp(num_layers, num_units, keep_prob, num_epochs, learning_rate, relu_logits)
    _evaluate(ctx, learner, {"type": "mlp", **learner.options.to_dict()}, input_file, cross_validate,
              train_partitions, eval_partitions, upsample, majority_vote, repeat, seed, quiet, output_json,
              confusion_png)


def svm_evaluate(ctx: typer.Context, input_file: Path = INPUT, cross_validate: bool = CROSS_VALIDATE,
                 train_partitions: Optional[List[str]] = TRAIN_PARTITIONS,
                 eval_partitions: Optional[List[str]] = EVAL_PARTITIONS, upsample: bool = UPSAMPLE,
                 majority_vote: bool = MAJORITY_VOTE, repeat: int = REPEAT, seed: Optional[int] = SEED,
                 quiet: bool = QUIET, output_json: Optional[Path] = OUTPUT_JSON,
                 confusion_png: Optional[Path] = CONFUSION_PNG, complexity: float = COMPLEXITY) -> None:
    """Cross-validate or partition-evaluate a linear SVM: accuracy, UAR and confusion matrix."""
    from audeep_edge.training.learners import LinearSVM

    _evaluate(ctx, LinearSVM(complexity), {"type": "svm", "complexity": complexity}, input_file, cross_validate,
              train_partitions, eval_partitions, upsample, majority_vote, repeat, seed, quiet, output_json,
              confusion_png)


# --- predict -------------------------------------------------------------------------------------------
def _predict(learner, train_input: Path, train_partitions, eval_input: Path, eval_partitions, upsample: bool,
             majority_vote: bool, seed: int | None, output: Path | None) -> None:
    from audeep_edge.training.evaluation import fit_predict, vote_per_file
    from audeep_edge.training.learner_data import class_indices, class_names, load_vectors, select_partitions

    train = load_vectors(train_input)
    names = class_names(train, train_input)
    train = select_partitions(train, train_input, _partition_codes(train_partitions), "--train-partitions")
    labels = class_indices(train, names, train_input)
    evaluation = select_partitions(load_vectors(eval_input), eval_input, _partition_codes(eval_partitions),
                                   "--eval-partitions")
    if evaluation.feature_shape != train.feature_shape:
        raise DataError(f"{eval_input}: {evaluation.feature_shape[0]} features per instance, but {train_input} has "
                        f"{train.feature_shape[0]}")
    predictions = fit_predict(learner, train.features, labels, evaluation.features, len(names), upsample=upsample,
                              rng=np.random.default_rng(_seed(seed)))
    if majority_vote:
        files, predictions = vote_per_file(evaluation.filenames, predictions, len(names))
        lines = [f"{f}\t{names[p]}" for f, p in zip(files, predictions)]
    else:
        order = np.lexsort((evaluation.chunk_nrs, evaluation.filenames.astype(str)))
        chunked = len(set(evaluation.filenames)) < evaluation.num_instances
        lines = [f"{evaluation.filenames[i]}\t{evaluation.chunk_nrs[i]}\t{names[predictions[i]]}" if chunked
                 else f"{evaluation.filenames[i]}\t{names[predictions[i]]}" for i in order]
    text = "".join(line + "\n" for line in lines)
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write_text(output, text, "--output")
        log.info("wrote %d predictions to %s", len(lines), output)


TRAIN_INPUT = typer.Option(..., "--train-input", help="Labelled netCDF data set to train on.")
EVAL_INPUT = typer.Option(..., "--eval-input", help="netCDF data set to label (labels not needed).")
OUTPUT_TSV = typer.Option(None, "--output", help="TSV file 'filename<TAB>label' sorted by filename (default: stdout).")


def mlp_predict(train_input: Path = TRAIN_INPUT, train_partitions: Optional[List[str]] = TRAIN_PARTITIONS,
                eval_input: Path = EVAL_INPUT, eval_partitions: Optional[List[str]] = EVAL_PARTITIONS,
                upsample: bool = UPSAMPLE, majority_vote: bool = MAJORITY_VOTE, seed: Optional[int] = SEED,
                output: Optional[Path] = OUTPUT_TSV, shuffle: bool = SHUFFLE, num_layers: int = NUM_LAYERS,
                num_units: int = NUM_UNITS, keep_prob: float = KEEP_PROB, num_epochs: int = NUM_EPOCHS,
                learning_rate: float = LEARNING_RATE, relu_logits: bool = RELU_LOGITS) -> None:
    """Train the MLP on one data set and write the predicted label of every file of another."""
    learner = _mlp(num_layers, num_units, keep_prob, num_epochs, learning_rate, relu_logits)
    _predict(learner, train_input, train_partitions, eval_input, eval_partitions, upsample, majority_vote, seed,
             output)


def svm_predict(train_input: Path = TRAIN_INPUT, train_partitions: Optional[List[str]] = TRAIN_PARTITIONS,
                eval_input: Path = EVAL_INPUT, eval_partitions: Optional[List[str]] = EVAL_PARTITIONS,
                upsample: bool = UPSAMPLE, majority_vote: bool = MAJORITY_VOTE, seed: Optional[int] = SEED,
                output: Optional[Path] = OUTPUT_TSV, complexity: float = COMPLEXITY) -> None:
    """Train a linear SVM on one data set and write the predicted label of every file of another."""
    from audeep_edge.training.learners import LinearSVM

    _predict(LinearSVM(complexity), train_input, train_partitions, eval_input, eval_partitions, upsample,
             majority_vote, seed, output)


# --- train a head --------------------------------------------------------------------------------------
def mlp_train(input_file: Path = typer.Option(..., "--input", help="Labelled netCDF data set of representations."),
              output: Path = typer.Option(..., "--output", help="Head directory to write (head.keras, labels.json, "
                                          "head.json)."),
              train_partitions: Optional[List[str]] = TRAIN_PARTITIONS,
              evaluate_first: bool = typer.Option(False, "--evaluate", help="Cross-validate first and record the "
                                                  "scores in head.json."),
              dataset_name: Optional[str] = typer.Option(None, "--dataset-name", help="Name recorded in head.json "
                                                         "(default: the input path)."),
              upsample: bool = UPSAMPLE, seed: Optional[int] = SEED, shuffle: bool = SHUFFLE,
              num_layers: int = NUM_LAYERS, num_units: int = NUM_UNITS, keep_prob: float = KEEP_PROB,
              num_epochs: int = NUM_EPOCHS, learning_rate: float = LEARNING_RATE,
              relu_logits: bool = RELU_LOGITS) -> None:
    """Train the MLP on all (or the selected) labelled data and save it as a classifier head for `quantize`."""
    import keras

    from audeep_edge import __version__
    from audeep_edge.dataset.model import PARTITIONS
    from audeep_edge.training.evaluation import cross_validation_splits, evaluate, training_set
    from audeep_edge.training.heads import save_head
    from audeep_edge.training.learner_data import class_indices, class_names, load_vectors, select_partitions

    learner = _mlp(num_layers, num_units, keep_prob, num_epochs, learning_rate, relu_logits)
    ds = load_vectors(input_file)
    names = class_names(ds, input_file)
    partitions = _partition_codes(train_partitions)
    ds = select_partitions(ds, input_file, partitions, "--train-partitions")
    labels = class_indices(ds, names, input_file)
    seed = _seed(seed)
    scores = None
    if evaluate_first:
        if not ds.has_cv_info:
            raise DataError(f"{input_file}: --evaluate needs cross-validation folds; add them with `audeep-edge "
                            "modify --add-cv-setup 5` or leave out --evaluate")
        result = evaluate(learner, ds.features, labels, ds.filenames, cross_validation_splits(ds.cv_folds),
                          len(names), upsample=upsample, seed=seed)
        scores = {"folds": ds.num_folds, "accuracy": result.accuracy, "accuracy_std": result.accuracy_std,
                  "uar": result.uar, "uar_std": result.uar_std}
        log.info("cross-validation: accuracy %.2f%%, UAR %.2f%%", 100 * result.accuracy, 100 * result.uar)
    features, targets = training_set(ds.features, labels, upsample, np.random.default_rng(seed))
    learner.fit(features, targets, len(names), seed=seed)
    info = {"dataset": dataset_name or str(input_file), "train_partitions": [PARTITIONS[p] for p in partitions],
            "instances": ds.num_instances, "learner": {"type": "mlp", **learner.options.to_dict()},
            "upsample": upsample, "seed": seed, "cross_validation": scores,
            "versions": {"audeep_edge": __version__, "keras": keras.__version__}}
    save_head(output, learner.head, names, info)
    log.info("wrote classifier head (%d features -> %d classes) to %s", ds.feature_shape[0], len(names), output)


def register(app: typer.Typer) -> None:
    """Register ``mlp evaluate|predict|train`` and ``svm evaluate|predict``."""
    mlp_app.command("evaluate")(mlp_evaluate)
    mlp_app.command("predict")(mlp_predict)
    mlp_app.command("train")(mlp_train)
    svm_app.command("evaluate")(svm_evaluate)
    svm_app.command("predict")(svm_predict)
    app.add_typer(mlp_app, name="mlp")
    app.add_typer(svm_app, name="svm")
