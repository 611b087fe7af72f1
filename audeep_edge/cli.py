"""The ``audeep-edge`` command: global options, command registration and the error boundary.

Each area registers its own commands from ``audeep_edge.commands.<area>``; heavy libraries
(TensorFlow, Keras, xarray) are imported inside the command functions, never here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from audeep_edge import __version__
from audeep_edge.errors import AudeepError, exit_with
from audeep_edge.log import setup_logging

app = typer.Typer(
    name="audeep-edge",
    help="Unsupervised audio representations (auDeep) trained with Keras 3 and streamed live on edge devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"audeep-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Warnings and errors only."),
    log_file: Optional[Path] = typer.Option(None, "--log-file", help="Also write a debug log to this file."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    if not verbose:  # TensorFlow/XLA C++ logging is noise unless debugging (auDeep does the same)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    setup_logging(0 if quiet else 2 if verbose else 1, log_file)


def _register_all() -> None:
    from audeep_edge.commands import COMMAND_MODULES

    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"audeep_edge.commands.{name}").register(app)


_register_all()


def main() -> None:
    """Console entry point: runs the app and turns AudeepError into one line on stderr."""
    try:
        app()
    except AudeepError as exc:
        exit_with(exc)
    except KeyboardInterrupt:
        sys.exit(130)
