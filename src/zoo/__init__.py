"""Data sets and pretrained files by name: the download manifest, verified resumable downloads, and
``model.weights=<name>`` resolution. Entry point: ``python -m src.download``."""

from src.zoo.install import Outcome, install, install_file
from src.zoo.manifest import Entry, FileSpec, default_roots, load_manifest
from src.zoo.transfer import DownloadError
from src.zoo.weights import resolve_weight_keys, resolve_weights

__all__ = ["DownloadError", "Entry", "FileSpec", "Outcome", "default_roots", "install", "install_file",
           "load_manifest", "resolve_weight_keys", "resolve_weights"]
