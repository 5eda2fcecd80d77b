"""Data: image I/O, patch data sets and the LightningDataModules."""

from src.data.datamodules import FolderDataModule, PairedFolderDataModule, SampleDataModule, SRDataModule

__all__ = ["FolderDataModule", "PairedFolderDataModule", "SRDataModule", "SampleDataModule"]
