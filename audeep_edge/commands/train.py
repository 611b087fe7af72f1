"""``audeep-edge train DIR --output NAME.bundle``: a folder of labelled clips -> a verified bundle for ``listen``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from audeep_edge.bundle import PRECISIONS
from audeep_edge.dataset.parsers.classfolder import MAX_FOLDS
from audeep_edge.own_sounds import DEFAULT_EPOCHS


def train(
    data: Path = typer.Argument(..., metavar="DIR", help="Labelled clips: one folder per class, "
                                "DIR/<label>/*.wav|flac|ogg|mp3 (or another labelled layout, see `inspect raw`)."),
    output: Path = typer.Option(..., "--output", "-o", help="Bundle directory to write, e.g. kitchen.bundle."),
    bundle: Optional[Path] = typer.Option(None, "--bundle", "-b", help="Bundle whose front end and encoder to "
                                          "start from: directory or bundled name (default: the bundled default "
                                          "model, as for `listen`; with --unlabelled the bundled ESC-10 t-RAE, "
                                          "esc10-dynamic)."),
    unlabelled: Optional[List[Path]] = typer.Option(None, "--unlabelled", help="Also train a new encoder (an "
                                                    "autoencoder, no labels needed) on DIR plus the audio in this "
                                                    "folder; repeatable. Minutes instead of seconds; needs the "
                                                    "\\[train] extra."),
    epochs: int = typer.Option(DEFAULT_EPOCHS, "--epochs", min=1, help="Autoencoder epochs (--unlabelled)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Precision of a new encoder (--unlabelled; "
                                            "default dynamic): "
                                            f"{', '.join(p for p in PRECISIONS if p != 'edgetpu')}. Without "
                                            "--unlabelled the bundle keeps --bundle's precision."),
    folds: int = typer.Option(MAX_FOLDS, "--folds", min=2, help="At most this many cross-validation folds (fewer when "
                              "the smallest class has fewer recordings)."),
    data_name: Optional[str] = typer.Option(None, "--data-name", help="Name of the data for the model card "
                                            "(default: the folder name)."),
    data_license: Optional[str] = typer.Option(None, "--data-license", help="Licence of the clips for the model "
                                               "card, e.g. 'CC BY 4.0' or 'own recordings'."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Embeddings and checkpoints kept between "
                                            "runs, so an interrupted run resumes (default: NAME.work next to "
                                            "--output)."),
    seed: int = typer.Option(1, "--seed", help="Seed of the autoencoder training."),
) -> None:
    """Train a bundle on your own sounds: cross-validated accuracy, confusion matrix, model card; then
    `audeep-edge listen --bundle NAME.bundle` labels them.

    By default the bundled encoder is reused and only a classifier head is fitted (seconds).
    """
    from audeep_edge.head.enroll import FALSE_ACCEPT
    from audeep_edge.own_sounds.run import TrainOptions
    from audeep_edge.own_sounds.run import train as run_train
    from audeep_edge.training.confusion import labelled_confusion_text
    from audeep_edge.training.quantize.bundler import format_report

    result = run_train(TrainOptions(
        data=data, output=output, bundle=bundle, unlabelled=tuple(unlabelled or ()), epochs=epochs,
        precision=precision, max_folds=folds, data_name=data_name, data_license=data_license, work_dir=work_dir,
        seed=seed, command=shlex.join(["audeep-edge", *sys.argv[1:]])))
    clips, cv = result.clips, result.cv
    counts = ", ".join(f"{name} {int((clips.labels == i).sum())}" for i, name in enumerate(clips.names))
    typer.echo(f"{len(clips.names)} classes ({counts} clips), {clips.num_folds} folds ({clips.layout} layout)")
    if result.encoder_parity is not None:
        typer.echo("new encoder: " + format_report(result.encoder_parity).replace("\n", "\n  "))
    right = int(round(cv.accuracy * len(clips.paths)))
    typer.echo(f"cross-validated accuracy: {100 * cv.accuracy:.1f} % ({right}/{len(clips.paths)} clips; folds "
               + " / ".join(f"{100 * a:.1f}" for a in cv.fold_accuracies) + " %)")
    if result.cv_by_head_input:
        typer.echo(f"  the head reads {result.head_input} of the embedding, the best of: " + ", ".join(
            f"{name} {100 * each.accuracy:.1f} %" for name, each in result.cv_by_head_input.items()))
    if result.cv_base_encoder is not None:
        typer.echo(f"  with the base bundle's encoder (head only, same folds): "
                   f"{100 * result.cv_base_encoder.accuracy:.1f} %")
        if result.cv_base_encoder.accuracy > cv.accuracy:
            typer.echo("  the base encoder does better on these clips: train without --unlabelled, or give more "
                       "unlabelled audio or --epochs")
    typer.echo(labelled_confusion_text(cv.confusion, clips.names))
    parity = result.head_parity
    typer.echo(f"head on the device model: probabilities within {parity['probability_max_abs_error']:.1g} of the "
               f"fitted head, embeddings unchanged (max diff {parity['embedding_max_abs_error']:.1g}) on "
               f"{parity['windows']} windows")
    if result.measured_accept is not None:
        typer.echo(f"enrolment threshold without a baseline (the encoder had none): cosine "
                   f"{result.measured_accept:.3f}, which {100 * FALSE_ACCEPT:.0f} % of other classes' windows "
                   "reach here")
    shown = f"; confusion matrix {result.png}" if result.png else ""
    typer.echo(f"wrote {result.output} (labels {', '.join(clips.names)}{shown}); work files in {result.work}")
    typer.echo(f"try it: audeep-edge listen --bundle {result.output} --file CLIP.wav --broker none --jsonl -")


def register(app: typer.Typer) -> None:
    """Register ``train`` on the main app."""
    app.command("train")(train)
