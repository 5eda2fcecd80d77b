"""Resumable output folders for the CLIs that process many files (``src.upscale``, ``src.degrade``).

A run records its settings in ``<output>/.srsuite/<tool>.json`` before it writes anything. A rerun with the same
settings resumes: outputs that exist and decode completely are kept and skipped, damaged ones (an interrupted
write) are redone. Existing outputs from other settings (or of unknown origin) are never replaced unless
``overwrite=true``. Input files that cannot be read are skipped, listed at the end, and make the run fail
(:class:`BadInputsError`) after every good file was processed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from src.data.checks import check_image, describe_bad
from src.storage.atomic import write_text


class BadInputsError(ValueError):
    """Some inputs could not be read; the others were processed. One line naming them."""

    def __init__(self, bad: dict[Path, str], total: int, done_note: str) -> None:
        super().__init__(f"{len(bad)} of {total} input file(s) could not be read and were skipped: "
                         f"{describe_bad(bad)}; {done_note}")
        self.bad = bad


def manifest_path(folder: str | Path, tool: str) -> Path:
    return Path(folder) / ".srsuite" / f"{tool}.json"


def same_settings(folder: str | Path, tool: str, settings: dict[str, Any]) -> bool:
    """True when ``folder`` records exactly ``settings`` for ``tool`` (compared as JSON)."""
    try:
        recorded = json.loads(manifest_path(folder, tool).read_text())
    except (OSError, ValueError):
        return False
    return recorded.get("settings") == json.loads(json.dumps(settings, sort_keys=True, default=str))


def record_settings(folder: str | Path, tool: str, settings: dict[str, Any]) -> None:
    """Write the settings file atomically (temp file in the same folder, fsync, rename)."""
    plain = json.loads(json.dumps(settings, sort_keys=True, default=str))
    write_text(manifest_path(folder, tool), json.dumps({"settings": plain}, indent=1))


def finished(path: str | Path) -> bool:
    """An output that exists and decodes completely."""
    path = Path(path)
    return path.is_file() and check_image(path) is None


def file_stamp(path: str | Path | None) -> list | None:
    """(resolved path, size, mtime in ns) of a file that the settings depend on (weights), else ``None``."""
    if not path:
        return None
    p = Path(str(path)).expanduser()
    if not p.is_file():
        return [str(p)]
    st = p.stat()
    return [str(p.resolve()), st.st_size, st.st_mtime_ns]
