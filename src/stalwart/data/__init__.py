"""Data: :class:`Dataset` and :class:`Schema`, and loaders for CSV, Parquet and NPZ files."""

from stalwart.data.dataset import Dataset
from stalwart.data.loaders import load_csv, load_data, load_npz, load_parquet
from stalwart.data.schema import Column, Schema

__all__ = ["Dataset", "Schema", "Column", "load_csv", "load_parquet", "load_npz", "load_data"]
