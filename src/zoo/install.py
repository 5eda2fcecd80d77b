"""Installing manifest entries: fetch each file (:mod:`src.zoo.transfer`), then move it into place or extract it.

Archives are extracted into ``<destination>/.<name>.extract/`` and each folder named in the entry's ``extract``
mapping is renamed into place; a folder that already exists is kept as it is (never overwritten or merged).
``<destination>/.srsuite-downloads.json`` records the finished archives. A plain file is renamed from its
verified ``.part`` file. So the data configs never see a half-written file or folder under its final name, and
a rerun of a finished download does nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from src.storage.atomic import move_into_place, write_text
from src.zoo.manifest import Entry, FileSpec
from src.zoo.transfer import DownloadError, fetch, matches

MARKER = ".srsuite-downloads.json"


@dataclass
class Outcome:
    entry: str
    file: str
    status: str  # "downloaded" | "present"
    paths: list[Path]
    note: str = ""

    def line(self) -> str:
        where = ", ".join(str(p) for p in self.paths)
        what = "already present" if self.status == "present" else "downloaded"
        return f"{self.entry}: {self.file} {what} -> {where}" + (f" ({self.note})" if self.note else "")


@contextmanager
def _locked(folder: Path, spec: FileSpec) -> Iterator[None]:
    """One process at a time per file (several ranks resolving the same model name, two shells). The lock file
    is removed once the file is in place (a process still waiting on it then finds the file present); after a
    failure it stays, so that waiting processes and newcomers share one lock."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f".{spec.name}.lock"
    with lock.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
            lock.unlink(missing_ok=True)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_marker(folder: Path) -> dict:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def _write_marker(folder: Path, spec: FileSpec, targets: list[str]) -> None:
    data = _read_marker(folder)
    data[spec.name] = {spec.checksum_kind: spec.checksum, "folders": targets}
    write_text(folder / MARKER, json.dumps(data, indent=1, sort_keys=True) + "\n")


def target_paths(spec: FileSpec, folder: Path) -> list[Path]:
    """Where ``spec`` ends up: the file itself, or the folders its archive is extracted to."""
    return [folder / dst for dst in spec.extract.values()] if spec.extract else [folder / spec.name]


def is_present(spec: FileSpec, folder: Path, label: str) -> bool:
    """Whether ``spec`` is already in place. A plain file of the wrong size or checksum is an error (it is not
    overwritten); an archive counts as present when every folder it extracts to exists."""
    if spec.extract:
        return all(p.is_dir() for p in target_paths(spec, folder))
    path = folder / spec.name
    if not path.is_file():
        return False
    ok = path.stat().st_size == spec.size if spec.size is not None else matches(path, spec)
    if not ok:
        raise DownloadError(f"{label}: {path} exists but does not match the manifest (size or checksum): "
                            "remove it and rerun")
    return True


def _safe_members_zip(zf: zipfile.ZipFile, label: str) -> None:
    for name in zf.namelist():
        p = Path(name)
        if p.is_absolute() or ".." in p.parts:
            raise DownloadError(f"{label}: refusing archive member outside the destination: {name}")


def _extract(archive: Path, spec: FileSpec, into: Path, label: str) -> None:
    try:
        if spec.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                _safe_members_zip(zf, label)
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError) as exc:
        raise DownloadError(f"{label}: cannot extract {archive.name}: {exc}") from exc
    except OSError as exc:
        raise DownloadError(f"{label}: extracting {archive.name} into {into} failed: {exc}") from exc


def _place_archive(part: Path, spec: FileSpec, folder: Path, label: str, keep_archive: bool) -> tuple[list, str]:
    tmp = folder / f".{spec.name}.extract"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _extract(part, spec, tmp, label)
        missing = [src for src in spec.extract if not (tmp / src).is_dir()]
        if missing:
            top = sorted(p.name for p in tmp.iterdir())
            raise DownloadError(f"{label}: the archive has no folder {missing[0]!r} (its top level: {top}); the "
                                f"manifest's 'extract' layout does not fit it (the verified archive is kept: {part})")
        placed, kept = [], []
        for src, dst in spec.extract.items():
            target = folder / dst
            if target.exists():
                kept.append(dst)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / src, target)
            placed.append(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _write_marker(folder, spec, list(spec.extract.values()))
    if keep_archive:
        move_into_place(part, folder / spec.name)
    else:
        part.unlink()
    return [folder / d for d in placed + kept], (f"kept existing {', '.join(kept)}" if kept else "")


def _check_structure(part: Path, spec: FileSpec, label: str) -> None:
    """The file's ``verify`` check (:mod:`src.zoo.checks`) on the verified ``.part`` file; removed when it fails."""
    from src.zoo.checks import run_check

    check, arguments = spec.verify
    try:
        run_check(part, check, arguments)
    except ValueError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{label}: the downloaded file fails the {check} check ({exc}); it was removed") from exc


def install_file(entry: Entry, spec: FileSpec, roots: dict[str, Path], *, mirror: str | None = None,
                 progress: bool = True, keep_archives: bool = False, retries: int = 3) -> Outcome:
    """Make one file of ``entry`` present (see the module docstring)."""
    folder = spec.folder(roots)
    label = f"{entry.name}: {spec.name}"
    with _locked(folder, spec):
        if is_present(spec, folder, label):
            return Outcome(entry.name, spec.name, "present", target_paths(spec, folder))
        part = fetch(spec, folder, label, mirror=mirror, progress=progress, retries=retries)
        if spec.verify:
            _check_structure(part, spec, label)
        if spec.extract:
            paths, note = _place_archive(part, spec, folder, label, keep_archives)
            return Outcome(entry.name, spec.name, "downloaded", paths, note)
        move_into_place(part, folder / spec.name)
        return Outcome(entry.name, spec.name, "downloaded", [folder / spec.name])


def install(entries: list[Entry], roots: dict[str, Path], **kwargs) -> list[Outcome]:
    """Install every file of every entry, in order; stops at the first error (a :class:`DownloadError`)."""
    return [install_file(e, f, roots, **kwargs) for e in entries for f in e.files]

