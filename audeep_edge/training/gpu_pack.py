"""Pack spectrogram netCDF files as ``.npz`` for ``train/gpu_train.py`` (which has no xarray), and back.

``python -m audeep_edge.training.gpu_pack --output DIR FILE.nc [FILE.nc ...]`` writes ``DIR/<stem>.npz``
with ``features`` (N, T, F) float16 (values in [-1, 1]; half the size, ample precision for training),
``frontend`` (the data set's ``frontend`` attribute, JSON text, "" if absent) and ``filenames``.

``python -m audeep_edge.training.gpu_pack --metadata SPECTROGRAMS.nc --output OUT.nc SNAPSHOT.npz`` turns a
``representations-eEPOCH.npz`` of ``gpu_train.py --snapshot-every`` into a representations data set with the
spectrograms' labels, folds and partitions, as ``t-rae generate`` writes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from audeep_edge.errors import AudeepError, DataError, exit_with


def pack(nc_file: str | Path, output_dir: str | Path) -> Path:
    """Write ``output_dir/<stem of nc_file>.npz`` and return its path."""
    from audeep_edge.dataset import load_dataset

    ds = load_dataset(nc_file)
    target = Path(output_dir) / f"{Path(nc_file).stem}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, features=ds.features.astype(np.float16),
                        frontend=np.array(ds.attrs.get("frontend", "")),
                        filenames=np.array([str(f) for f in ds.filenames]))
    return target


def unpack(snapshot: str | Path, metadata: str | Path, output: str | Path) -> Path:
    """Write ``snapshot``'s representations with the metadata of the spectrograms they were generated from."""
    from audeep_edge.dataset import load_dataset

    ds = load_dataset(metadata)
    with np.load(snapshot) as data:
        features, filenames = data["features"], data["filenames"]
    if [str(f) for f in filenames] != [str(f) for f in ds.filenames]:
        raise DataError(f"{snapshot}: its instances are not those of {metadata} (trained with --limit, or on "
                        "other spectrograms?)")
    ds.with_features(features.astype(np.float32)).save(output)
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, type=Path,
                        help="directory for the .npz files (with --metadata: the .nc file to write)")
    parser.add_argument("--metadata", type=Path, help="unpack: the spectrogram .nc file the snapshot encodes")
    parser.add_argument("inputs", nargs="+", type=Path, help="spectrogram netCDF files (with --metadata: one "
                        "snapshot .npz)")
    args = parser.parse_args(argv)
    if args.metadata is not None and len(args.inputs) != 1:
        parser.error("--metadata takes exactly one snapshot .npz")
    try:
        if args.metadata is not None:
            print(unpack(args.inputs[0], args.metadata, args.output))
            return
        for nc_file in args.inputs:
            print(pack(nc_file, args.output))
    except AudeepError as error:
        exit_with(error)


if __name__ == "__main__":
    main()
