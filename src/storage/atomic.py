"""Writing files so that a crash, a kill or a full disk never leaves a partial file under the final name.

:func:`atomic_write` writes to a temporary file in the *same folder* (so the final rename never crosses a
filesystem and never turns into a copy), flushes and ``fsync``s it, then ``os.replace``s it onto the final
name and ``fsync``s the folder. On any error the temporary file is removed and an existing file of that name
is left untouched; :func:`atomic_path` does the same for writers that need a file name. :func:`check_writable`
finds an unwritable or full output folder before long work starts.

Every file srsuite writes (checkpoints through :class:`src.training.callbacks.AtomicCheckpointIO`, BasicSR exports,
upscaled / degraded images, CSV / Markdown tables, plots) goes through :func:`atomic_write`; ONNX / TorchScript
exports and other files written by a library that takes a file name go through :func:`atomic_path`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_MARK = ".tmp-"  # temporary names: .<final name>.tmp-<pid>-<random>


class OutputError(ValueError):
    """A file or folder that cannot take this run's output (unwritable, not a folder, not enough space); entry
    points print it as one ``error:`` line."""


def temp_name(path: Path) -> Path:
    """A fresh hidden temporary name beside ``path``."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename itself is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _replacing(path: Path, tmp: Path) -> Iterator[None]:
    """Around a block that writes ``tmp``: afterwards ``fsync`` it and ``os.replace`` it onto ``path`` (then
    ``fsync`` the folder); on any error remove ``tmp`` and leave ``path`` untouched, an ``OSError`` becoming
    :class:`OutputError` naming the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            kept = "the previous file is unchanged" if path.exists() else "nothing was written"
            raise OutputError(f"cannot write {path}: {exc.strerror or exc} ({kept})") from exc
        raise
    _fsync_folder(path.parent)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Open ``path`` for writing, atomically: the caller writes to a temporary file in the same folder, which
    replaces ``path`` only when the ``with`` block ends without an error (after flush + fsync). ``mode`` is
    ``"wb"`` or ``"w"`` (text; ``open_kwargs`` such as ``newline=""`` / ``encoding`` go to :func:`open`).
    The folder is created when missing. New files get the usual permissions (0o666 minus the umask). An
    ``OSError`` on the way (disk full, read-only, permissions) becomes :class:`OutputError` naming the file."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = temp_name(path)
    with _replacing(path, tmp):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """For writers that need a file *name* (``onnx.save``, ``torch.jit.save``, a format chosen by suffix): yields
    a temporary path in the same folder ending in ``path``'s suffix; when the ``with`` block ends without an error
    the file written there replaces ``path`` as in :func:`atomic_write` (fsync, rename, fsync of the folder). On
    an error the temporary file is removed and an existing ``path`` is left untouched."""
    path = Path(path)
    tmp = temp_name(path)
    tmp = tmp.with_name(tmp.name + path.suffix)  # .<name>.tmp-<pid>-<random><suffix>
    with _replacing(path, tmp):
        yield tmp


def move_into_place(tmp: str | Path, path: str | Path) -> Path:
    """Give a finished file in ``path``'s folder (a verified download) its final name: ``fsync`` it, rename it
    onto ``path``, ``fsync`` the folder (errors as in :func:`atomic_write`)."""
    path = Path(path)
    with _replacing(path, Path(tmp)):
        pass
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``path.write_bytes(data)``, atomically."""
    with atomic_write(path) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """``path.write_text(text)`` (UTF-8), atomically."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def check_writable(folder: str | Path, need_bytes: int = 0, what: str = "output", probe: bool = True) -> Path:
    """Create ``folder`` if needed and make sure a file can be written there (``probe``) and that at least
    ``need_bytes`` bytes are free on its filesystem; raises :class:`OutputError` naming the folder otherwise. The
    probe creates and removes a small file (permission bits alone do not tell: read-only mounts, quotas, root)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(f"{what} folder {folder} exists and is not a folder") from exc
    except OSError as exc:
        raise OutputError(f"{what} folder {folder} cannot be created: {exc.strerror or exc}") from exc
    if probe:
        _probe(folder, what)
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise OutputError(
            f"{what} folder {folder} has {_size(free)} free, but about {_size(need_bytes)} will be written there"
        )
    return folder


def _probe(folder: Path, what: str) -> None:
    path = temp_name(folder / "write-probe")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"{what} folder {folder} is not writable: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
