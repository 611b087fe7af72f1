"""Data-set commands: preprocess, inspect raw|netcdf, validate, fuse [chunks], export, import, upsample, modify.

Option names and defaults follow auDeep. Options that take several values in auDeep (``--input A B``,
``--partitions train devel``) also accept repetition (``--partitions train --partitions devel``) or commas.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import typer

from audeep_edge.errors import ConfigError

log = logging.getLogger(__name__)

inspect_app = typer.Typer(help="Describe raw audio data sets or netCDF feature files.", no_args_is_help=True)


def _echo_rows(rows: list[tuple[str, str]]) -> None:
    width = max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


def _split_values(values: list[str] | None) -> list[str]:
    """``["train,devel", "test"]`` -> ``["train", "devel", "test"]``."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _report_skipped(skipped: list[str]) -> None:
    if skipped:
        log.warning("skipped %d file(s):", len(skipped))
        for message in skipped:
            log.warning("  %s", message)


def preprocess(
    basedir: Path = typer.Option(..., "--basedir", help="Data set base directory."),
    parser: str = typer.Option("meta", "--parser", help="meta (auto-detect), esc, dcase, urbansound8k, partitioned, "
                               "cross-validated, class-folders (DIR/<label>/*.wav), no-metadata, module:Class or "
                               "path/to/file.py:Class."),
    output: Path = typer.Option(Path("spectrograms.nc"), "--output", help="Output netCDF file."),
    mel_spectrum: Optional[int] = typer.Option(None, "--mel-spectrum", metavar="FILTERS",
                                               help="Number of mel filters (default: linear power spectrum)."),
    window_width: float = typer.Option(0.04, "--window-width", help="FFT window length in seconds."),
    window_overlap: float = typer.Option(0.02, "--window-overlap", help="Window overlap in seconds."),
    clip_above: Optional[float] = typer.Option(None, "--clip-above", metavar="DB", help="Ceiling in dB re max."),
    clip_below: Optional[float] = typer.Option(None, "--clip-below", metavar="DB", help="Floor in dB re max, e.g. -60."),
    chunk_length: Optional[float] = typer.Option(None, "--chunk-length", help="Chunk length in seconds."),
    chunk_count: Optional[int] = typer.Option(None, "--chunk-count", help="Number of chunks per file."),
    channels: str = typer.Option("MEAN", "--channels", help="MEAN, DIFF, LEFT or RIGHT."),
    fixed_length: Optional[float] = typer.Option(None, "--fixed-length", help="Pad/cut audio to this many seconds."),
    center_fixed: bool = typer.Option(False, "--center-fixed", help="Pad/cut symmetrically instead of at the end."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Resample every file to this rate (Hz)."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes for extraction."),
    skip_errors: bool = typer.Option(False, "--skip-errors", help="Leave out unusable files and list them at the end."),
    pretend: Optional[int] = typer.Option(None, "--pretend", metavar="INDEX",
                                          help="Process only file INDEX and plot it (dB, unscaled) to a PNG."),
    pretend_output: Path = typer.Option(Path("pretend.png"), "--pretend-output", help="PNG written by --pretend."),
) -> None:
    """Extract spectrograms of a data set into an auDeep-compatible netCDF file."""
    from audeep_edge.dataset.parsers import get_parser
    from audeep_edge.features import FrontendConfig

    cfg = FrontendConfig(window_width=window_width, window_overlap=window_overlap, mel_bands=mel_spectrum,
                         clip_below=clip_below, clip_above=clip_above, fixed_length=fixed_length,
                         center_fixed=center_fixed, chunk_length=chunk_length, chunk_count=chunk_count,
                         channels=channels, sample_rate=sample_rate)
    data_parser = get_parser(parser, basedir)
    if pretend is not None:
        from audeep_edge.dataset.pretend import pretend as run_pretend

        _echo_rows(run_pretend(data_parser, pretend, cfg, pretend_output))
        return
    from audeep_edge.dataset.preprocess import preprocess as run_preprocess

    from audeep_edge.progress import progress_bar

    num_files = len(data_parser.parse())
    log.info("%s: %d files (%s parser), %d job(s)", data_parser.basedir, num_files, data_parser.name, jobs)
    with progress_bar(num_files, "preprocess") as advance:
        result = run_preprocess(data_parser, cfg, jobs=jobs, skip_errors=skip_errors, on_file_done=advance)
    result.dataset.save(output)
    ds = result.dataset
    log.info("wrote %d instances of %s %s to %s", ds.num_instances, ds.feature_dims, list(ds.feature_shape), output)
    _report_skipped(result.skipped)


def inspect_raw(
    basedir: Path = typer.Option(..., "--basedir", help="Data set base directory."),
    parser: str = typer.Option("meta", "--parser", help="Parser name, module:Class or path/to/file.py:Class."),
    skip_errors: bool = typer.Option(False, "--skip-errors", help="Leave out unreadable files and list them."),
) -> None:
    """Files, labels, folds, lengths, sample rates and channels of a raw data set."""
    from audeep_edge.dataset.inspect import raw_summary
    from audeep_edge.dataset.parsers import get_parser

    rows, skipped = raw_summary(get_parser(parser, basedir), skip_errors)
    _echo_rows(rows)
    _report_skipped(skipped)


def inspect_netcdf(
    input_file: Path = typer.Option(..., "--input", help="netCDF data set."),
    instance: Optional[int] = typer.Option(None, "--instance", help="Also show this instance's metadata."),
    detailed_folds: bool = typer.Option(False, "--detailed-folds", help="Class counts per fold and split."),
) -> None:
    """Instances, flags, feature shape and label map of a netCDF data set."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.dataset.inspect import fold_rows, instance_rows, netcdf_summary

    ds = load_dataset(input_file)
    _echo_rows(netcdf_summary(ds))
    if instance is not None:
        if not 0 <= instance < ds.num_instances:
            raise ConfigError(f"--instance {instance}: {input_file} has instances 0..{ds.num_instances - 1}")
        typer.echo("")
        _echo_rows(instance_rows(ds, instance))
    if detailed_folds:
        typer.echo("")
        _echo_rows(fold_rows(ds))


def validate(
    input_file: Path = typer.Option(..., "--input", help="netCDF data set."),
    detailed: bool = typer.Option(False, "--detailed", help="List the offending files."),
) -> None:
    """Check auDeep's 7 integrity constraints (plus finite features); exit status 1 on FAIL."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.dataset.integrity import check_integrity

    violations = check_integrity(load_dataset(input_file))
    typer.echo("FAIL validation" if violations else "PASS validation")
    for v in violations:
        typer.echo(f"  constraint {v.constraint} ({v.description}): {len(v.details)} violation(s)")
        if detailed:
            for line in v.details:
                typer.echo(f"    {line}")
    if violations:
        raise typer.Exit(1)


def fuse(
    args: Optional[List[str]] = typer.Argument(None, metavar="[chunks] [INPUT]...",
                                               help="'chunks' to fuse the chunks of one file; more input files."),
    input_files: Optional[List[Path]] = typer.Option(None, "--input", help="Input netCDF file(s)."),
    dimension: str = typer.Option("generated", "--dimension", help="Feature dimension to concatenate along."),
    output: Path = typer.Option(..., "--output", help="Output netCDF file."),
) -> None:
    """Concatenate the features of data sets with identical metadata; `fuse chunks`: one instance per file."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.dataset.fuse import fuse as fuse_sets
    from audeep_edge.dataset.fuse import fuse_chunks

    args = list(args or [])
    chunks = bool(args) and args[0] == "chunks"
    paths = list(input_files or []) + [Path(a) for a in args[1 if chunks else 0:]]
    if chunks:
        if len(paths) != 1:
            raise ConfigError(f"fuse chunks takes one --input file, got {len(paths)}")
        result = fuse_chunks(load_dataset(paths[0]), dimension, str(paths[0]))
    else:
        result = fuse_sets([load_dataset(p) for p in paths], [str(p) for p in paths], dimension)
    result.save(output)
    log.info("wrote %d instances of %s %s to %s", result.num_instances, result.feature_dims,
             list(result.feature_shape), output)


def export(
    input_file: Path = typer.Option(..., "--input", help="netCDF data set."),
    fmt: str = typer.Option(..., "--format", help="CSV or ARFF."),
    labels_last: bool = typer.Option(False, "--labels-last", help="Put the label columns after the features."),
    name: Optional[str] = typer.Option(None, "--name", help="File name (default: input name without suffix)."),
    output: Path = typer.Option(..., "--output", help="Output directory."),
) -> None:
    """Write a data set as CSV or ARFF, one file per partition and/or fold."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.dataset.export import export_dataset

    written = export_dataset(load_dataset(input_file), output, fmt, name or input_file.stem, labels_last)
    log.info("wrote %d file(s) under %s", len(written), output)


def import_tables(
    basedir: Path = typer.Option(..., "--basedir", help="Directory with the CSV/ARFF file(s)."),
    name: str = typer.Option(..., "--name", help="Table file name, with or without .csv/.arff."),
    filename_attribute: str = typer.Option("filename", "--filename-attribute"),
    chunk_nr_attribute: str = typer.Option("chunk_nr", "--chunk-nr-attribute"),
    label_nominal_attribute: str = typer.Option("label_nominal", "--label-nominal-attribute"),
    label_numeric_attribute: str = typer.Option("label_numeric", "--label-numeric-attribute"),
    output: Path = typer.Option(..., "--output", help="Output netCDF file."),
) -> None:
    """Import CSV/ARFF tables (one file, train/devel/test, or fold_N directories) as a data set."""
    from audeep_edge.dataset.importer import Columns, import_dataset

    ds = import_dataset(basedir, name, Columns(filename_attribute, chunk_nr_attribute, label_nominal_attribute,
                                               label_numeric_attribute))
    ds.save(output)
    log.info("wrote %d instances with %d features to %s", ds.num_instances, ds.feature_shape[0], output)


def upsample(
    input_file: Path = typer.Option(..., "--input", help="netCDF data set."),
    partitions: Optional[List[str]] = typer.Option(None, "--partitions", help="Partitions to balance (default all)."),
    output: Path = typer.Option(..., "--output", help="Output netCDF file."),
) -> None:
    """Balance classes by repeating instances of rare classes."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.dataset.upsample import upsample as run_upsample

    ds = run_upsample(load_dataset(input_file), _split_values(partitions))
    ds.save(output)
    log.info("wrote %d instances to %s", ds.num_instances, output)


def modify(
    input_file: Path = typer.Option(..., "--input", help="netCDF data set."),
    output: Path = typer.Option(..., "--output", help="Output netCDF file."),
    add_cv_setup: Optional[int] = typer.Option(None, "--add-cv-setup", metavar="K",
                                               help="K folds, stratified by class, whole files per fold."),
    add_partitioning: Optional[List[str]] = typer.Option(None, "--add-partitioning",
                                                         help="Deal files over these partitions."),
    remove_partitioning: bool = typer.Option(False, "--remove-partitioning"),
    remove_cv_setup: bool = typer.Option(False, "--remove-cv-setup"),
) -> None:
    """Add or remove a cross-validation setup or a partitioning (exactly one per call)."""
    from audeep_edge.dataset import load_dataset
    from audeep_edge.dataset import modify as ops

    chosen = [add_cv_setup is not None, bool(add_partitioning), remove_partitioning, remove_cv_setup]
    if sum(chosen) != 1:
        raise ConfigError("give exactly one of --add-cv-setup, --add-partitioning, --remove-partitioning, "
                          "--remove-cv-setup")
    ds = load_dataset(input_file)
    if add_cv_setup is not None:
        ds = ops.add_cv_setup(ds, add_cv_setup)
    elif add_partitioning:
        ds = ops.add_partitioning(ds, _split_values(add_partitioning))
    elif remove_partitioning:
        ds = ops.remove_partitioning(ds)
    else:
        ds = ops.remove_cv_setup(ds)
    ds.save(output)
    log.info("wrote %s to %s", ds, output)


def register(app: typer.Typer) -> None:
    """Register the data-set commands on the main app."""
    app.command("preprocess")(preprocess)
    inspect_app.command("raw")(inspect_raw)
    inspect_app.command("netcdf")(inspect_netcdf)
    app.add_typer(inspect_app, name="inspect")
    app.command("validate")(validate)
    app.command("fuse")(fuse)
    app.command("export")(export)
    app.command("import")(import_tables)
    app.command("upsample")(upsample)
    app.command("modify")(modify)
