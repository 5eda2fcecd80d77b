"""Up-front checks of image files, so that a corrupt or truncated file is named before any work starts instead
of crashing a loader worker mid-run.

Every file is opened and fully decoded (PIL; a header-only check misses truncated PNG/JPEG data, which is the
common damage from interrupted copies and downloads). Files are checked by a thread pool (PIL releases the GIL
while decoding). Results are cached per folder in ``$SR_CACHE`` (default ``~/.cache/srsuite``)
``/image_checks/<hash of the folder>.json``, keyed by file name with its modification time (ns) and size, so a
later run re-decodes only new or changed files (DIV2K's 800 2K PNGs: ~80 s of CPU once, then a stat per file).
The data folders themselves are never written to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from src.storage.atomic import OutputError, atomic_write

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where check results are kept: ``$SR_CACHE/image_checks`` or ``~/.cache/srsuite/image_checks``."""
    root = os.environ.get("SR_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srsuite"
    return Path(root) / "image_checks"


def check_image(path: str | Path) -> str | None:
    """``None`` if ``path`` decodes completely as an image with at least one pixel, else why not (one line)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with Image.open(path) as img:
            img.load()
            width, height = img.size
    except UnidentifiedImageError:
        return "not an image PIL can read (unknown or damaged header)"
    except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError … for damaged data
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"cannot be decoded: {text}"
    if width < 1 or height < 1:
        return f"has no pixels ({width}x{height})"
    return None


def _cache_file(folder: Path) -> Path:
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"{digest}.json"


def _load_cache(folder: Path) -> dict:
    try:
        data = json.loads(_cache_file(folder).read_text())
    except (OSError, ValueError):
        return {}
    if data.get("version") != CACHE_VERSION or data.get("folder") != str(folder.resolve()):
        return {}
    return data.get("files", {})


def _save_cache(folder: Path, files: dict) -> None:
    """Atomically (temp file in the same folder, fsync, rename); a cache that cannot be written is skipped."""
    try:
        with atomic_write(_cache_file(folder), "w") as f:
            json.dump({"version": CACHE_VERSION, "folder": str(folder.resolve()), "files": files}, f)
    except (OSError, OutputError) as exc:
        log.debug("image-check cache not written (%s)", exc)


def check_images(paths: Iterable[str | Path], workers: int | None = None, what: str = "image") -> dict[Path, str]:
    """``{file: reason}`` for every file of ``paths`` that does not decode (see :func:`check_image`); cached."""
    paths = [Path(p) for p in paths]
    by_folder: dict[Path, list[Path]] = {}
    for p in paths:
        by_folder.setdefault(p.parent, []).append(p)
    bad: dict[Path, str] = {}
    todo: list[tuple[Path, tuple[int, int]]] = []
    caches: dict[Path, dict] = {}
    for folder, files in by_folder.items():
        cache = caches[folder] = _load_cache(folder)
        for p in files:
            try:
                st = p.stat()
            except OSError as exc:
                bad[p] = f"cannot be read ({exc.strerror or exc})"
                continue
            key = (st.st_mtime_ns, st.st_size)
            entry = cache.get(p.name)
            if entry is not None and tuple(entry[:2]) == key:
                if entry[2] is not None:
                    bad[p] = entry[2]
            else:
                todo.append((p, key))
    if todo:
        workers = workers or min(32, os.cpu_count() or 1)
        start = time.perf_counter()
        if len(todo) > 50:
            log.info("checking %d %s files (full decode, %d threads; cached for later runs) …", len(todo), what,
                     workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reasons = list(pool.map(check_image, [p for p, _ in todo]))
        for (p, key), reason in zip(todo, reasons):
            caches[p.parent][p.name] = [key[0], key[1], reason]
            if reason is not None:
                bad[p] = reason
        for folder in {p.parent for p, _ in todo}:
            _save_cache(folder, caches[folder])
        log.info("checked %d %s files in %.1f s (%d from the cache): %d cannot be used", len(paths), what,
                 time.perf_counter() - start, len(paths) - len(todo), len(bad))
    return {p: bad[p] for p in paths if p in bad}


def describe_bad(bad: dict[Path, str], limit: int = 10) -> str:
    """``a.png (truncated …); b.png (…) … (+3 more)``: one line."""
    items = [f"{p} ({reason})" for p, reason in list(bad.items())[:limit]]
    more = f" … (+{len(bad) - limit} more)" if len(bad) > limit else ""
    return "; ".join(items) + more
