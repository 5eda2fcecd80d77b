"""Data: image I/O, patch data sets, the batch type and the LightningDataModules.

The DataModules are imported on first use (PEP 562), so that ``src.data.batch`` (imported by the degradations
and methods) does not pull in Lightning."""

from __future__ import annotations

import importlib

__all__ = ["FolderDataModule", "PairedFolderDataModule", "SRDataModule", "SampleDataModule"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("src.data.datamodules"), name)
    raise AttributeError(f"module 'src.data' has no attribute {name!r}")
