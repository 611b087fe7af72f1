"""Pack spectrogram netCDF files as ``.npz`` for ``train/gpu_train.py`` (which has no xarray).

``python -m audeep_edge.training.gpu_pack --output DIR FILE.nc [FILE.nc ...]`` writes ``DIR/<stem>.npz``
with ``features`` (N, T, F) float16 (values in [-1, 1]; half the size, ample precision for training),
``frontend`` (the data set's ``frontend`` attribute, JSON text, "" if absent) and ``filenames``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, type=Path, help="directory for the .npz files")
    parser.add_argument("inputs", nargs="+", type=Path, help="spectrogram netCDF files")
    args = parser.parse_args(argv)
    for nc_file in args.inputs:
        print(pack(nc_file, args.output))


if __name__ == "__main__":
    main()
