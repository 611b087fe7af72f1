"""auDeep's data model (xarray/netCDF4), its parsers and the data-set operations (train extra).

``DataSet`` and ``load_dataset`` are the contract other areas code against (docs/design.md).
"""

from audeep_edge.dataset.model import PARTITIONS, SPLITS, DataSet
from audeep_edge.dataset.netcdf import load_dataset

__all__ = ["DataSet", "load_dataset", "PARTITIONS", "SPLITS"]
