"""``audeep-edge quantize``: convert a trained encoder (+ head) to a deployable TFLite bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audeep_edge.bundle import PRECISIONS


def quantize(
    run_dir: Path = typer.Argument(..., help="Training run directory (holds config.json and the weights)."),
    precision: str = typer.Option(..., "--precision", help=f"{' | '.join(PRECISIONS)}."),
    output: Path = typer.Option(..., "--output", help="Bundle directory to write, e.g. esc10-int8.bundle."),
    head: Optional[Path] = typer.Option(None, "--head", help="Classifier head directory (head.keras, labels.json) "
                                        "to attach: the bundle then outputs class probabilities."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Spectrogram .nc file or folder of "
                                               "audio for int8 calibration and parity (default: the run's "
                                               "training data)."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Labelled spectrogram .nc file to measure "
                                             "parity and accuracy on (default: held-out calibration windows)."),
    eval_fold: Optional[int] = typer.Option(None, "--eval-fold", min=1, help="Cross-validation fold (1-based) of "
                                            "--eval-data whose validation split is used (default: 1 if it has "
                                            "folds, else all instances)."),
    calibration_windows: int = typer.Option(100, "--calibration-windows", min=1,
                                            help="Windows used to calibrate int8 / edgetpu."),
    parity_windows: int = typer.Option(100, "--parity-windows", min=1,
                                       help="Held-out windows for parity when --eval-data is not given."),
    name: Optional[str] = typer.Option(None, "--name", help="Bundle name (default: the --output name)."),
    data_name: Optional[str] = typer.Option(None, "--data-name", help="Name of the training data, recorded in "
                                            "bundle.json (default: the run's spectrogram file name)."),
    data_license: Optional[str] = typer.Option(None, "--data-license", help="License of the training data, "
                                               "recorded in bundle.json (e.g. 'CC BY 3.0')."),
    hop_seconds: float = typer.Option(1.0, "--hop-seconds", min=0.01, help="Default stride between windows "
                                      "when streaming, recorded in bundle.json."),
) -> None:
    """Convert RUN_DIR's encoder (with --head attached) to TFLite at --precision and write a bundle:
    model.tflite, bundle.json (front end, labels, hash, versions) and parity.json."""
    from audeep_edge.training.quantize.bundler import QuantizeOptions, format_report, quantize_run

    report = quantize_run(QuantizeOptions(
        run_dir=run_dir, precision=precision, output=output, head_dir=head, calibration=calibration,
        eval_data=eval_data, eval_fold=eval_fold, calibration_windows=calibration_windows,
        parity_windows=parity_windows, name=name, data_name=data_name, data_license=data_license,
        hop_seconds=hop_seconds))
    typer.echo(format_report(report))
    typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Register ``quantize`` on the main app."""
    app.command("quantize")(quantize)
