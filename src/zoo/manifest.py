"""The download manifest: every data set and weights file srsuite can fetch, with its official URL(s), size,
checksum, licence and where it lands.

The manifest ships as ``src/zoo/manifest.yaml``; ``manifest=<yaml>`` (or ``$SR_MANIFEST``) adds entries or
replaces entries of the same name. Schema of one entry::

    <name>:
      kind: dataset | model | auxiliary     # model: usable as model.weights=<name>; auxiliary: VGG, LPIPS, Ma
      description: …
      licence: …
      root: data | benchmarks | weights | torch_hub   # default root/destination of its files
      destination: <folder under the root>            # "" = the root itself
      files:
        - name: <file name>                 # also the name looked up in a mirror
          url: <url> | [<url>, …]           # tried in order
          size: <bytes> | "<approximate size, display only>"
          sha256: <64 hex> | sha256_prefix: <≥8 hex> | md5: <32 hex> | git_sha1: <40 hex>  # exactly one
          extract: {<folder in the archive>: <folder under the destination>, …}          # archives only
          verify: {check: <name>, <argument>: <value>, …}   # optional structural check (src/zoo/checks.py)
          root: …, destination: …           # optional per-file override

``git_sha1`` is Git's blob id (SHA-1 of ``"blob <size>\\0" + content``), the checksum GitHub publishes for every
file of a repository: used only for files whose sha256 is published nowhere.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from src.config.validation import ConfigError, benchmarks_root

MANIFEST = Path(__file__).with_name("manifest.yaml")
KINDS = ("dataset", "model", "auxiliary")
ROOTS = ("data", "benchmarks", "weights", "torch_hub")
CHECKSUMS = {"sha256": 64, "sha256_prefix": None, "md5": 32, "git_sha1": 40}
CHECKSUM_LABEL = {"sha256": "sha256", "sha256_prefix": "sha256 prefix", "md5": "md5", "git_sha1": "git blob sha1"}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
ENTRY_KEYS = {"kind", "description", "licence", "root", "destination", "files"}
FILE_KEYS = {"name", "url", "size", "extract", "verify", "root", "destination", *CHECKSUMS}


@dataclass(frozen=True)
class FileSpec:
    """One file of an entry: where it comes from, how to check it, where it goes."""

    name: str
    urls: tuple[str, ...]
    size: int | None  # exact size in bytes (checked), None when only an approximate size is published
    size_text: str
    checksum_kind: str  # a key of CHECKSUMS
    checksum: str  # lower-case hex
    root: str
    destination: str
    extract: dict[str, str] | None  # archive folder -> folder under the destination; None: a plain file
    verify: tuple[str, dict] | None = None  # (check name, arguments) of src.zoo.checks, run after the download

    def folder(self, roots: dict[str, Path]) -> Path:
        return roots[self.root] / self.destination if self.destination else roots[self.root]


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    description: str
    licence: str
    files: tuple[FileSpec, ...]

    @property
    def size_text(self) -> str:
        if all(f.size is not None for f in self.files):
            return format_bytes(sum(f.size for f in self.files))  # type: ignore[misc]
        return " + ".join(f.size_text for f in self.files) if len(self.files) > 1 else self.files[0].size_text

    @property
    def checksum_kinds(self) -> str:
        kinds = ", ".join(dict.fromkeys(CHECKSUM_LABEL[f.checksum_kind] for f in self.files))
        checks = ", ".join(dict.fromkeys(f.verify[0] for f in self.files if f.verify))
        return kinds + (f" + {checks} check" if checks else "")


def format_bytes(n: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def default_roots(**overrides: str | Path | None) -> dict[str, Path]:
    """Folders the manifest's ``root`` names stand for: ``data`` = ``$SR_DATA`` or ``./datasets`` (as the data
    configs), ``benchmarks`` = ``$SR_BENCHMARKS`` or the repository's ``benchmarks/``, ``weights`` =
    ``$SR_WEIGHTS`` or ``~/.cache/srsuite``, ``torch_hub`` = torch's ``hub/checkpoints`` (``$TORCH_HOME``)."""
    roots = {
        "data": os.environ.get("SR_DATA") or "./datasets",
        "benchmarks": benchmarks_root(),
        "weights": os.environ.get("SR_WEIGHTS") or "~/.cache/srsuite",
        "torch_hub": None,
    }
    roots.update({k: v for k, v in overrides.items() if v})
    if roots["torch_hub"] is None:
        roots["torch_hub"] = torch_hub_checkpoints()
    return {k: Path(str(v)).expanduser() for k, v in roots.items()}


def torch_hub_checkpoints() -> Path:
    """``torch.hub.get_dir() / "checkpoints"`` (``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else
    ``~/.cache/torch/hub``) without importing torch, which takes seconds."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def _fail(where: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def _check_keys(node: dict, valid: set[str], where: str) -> None:
    for key in node:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise _fail(where, f"unknown key '{key}'.{hint} Valid keys: {', '.join(sorted(valid))}")


def _parse_file(node: Any, entry: dict, where: str) -> FileSpec:
    if not isinstance(node, dict):
        raise _fail(where, f"expected a mapping, got {node!r}")
    _check_keys(node, FILE_KEYS, where)
    name = node.get("name")
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise _fail(where, f"'name' must be a plain file name, got {name!r}")
    where = f"{where} ({name})"
    urls = node.get("url")
    urls = [urls] if isinstance(urls, str) else urls
    if not urls or not all(isinstance(u, str) and re.match(r"^(https?|file)://", u) for u in urls):
        raise _fail(where, f"'url' must be an http(s) URL or a list of them, got {node.get('url')!r}")
    size = node.get("size")
    if isinstance(size, bool) or not (isinstance(size, int) and size > 0 or isinstance(size, str) and size):
        raise _fail(where, f"'size' must be a byte count or a text such as '~1.2 GB', got {size!r}")
    kinds = [k for k in CHECKSUMS if k in node]
    if len(kinds) != 1:
        raise _fail(where, f"needs exactly one checksum of {', '.join(CHECKSUMS)}, got {kinds or 'none'}")
    kind = kinds[0]
    value = str(node[kind]).lower()
    length = CHECKSUMS[kind]
    if not re.fullmatch(r"[0-9a-f]+", value) or (len(value) != length if length else not 8 <= len(value) < 64):
        raise _fail(where, f"'{kind}' is not a valid hex digest: {node[kind]!r}")
    root = node.get("root", entry.get("root"))
    if root not in ROOTS:
        raise _fail(where, f"'root' must be one of {', '.join(ROOTS)}, got {root!r}")
    dest = node.get("destination", entry.get("destination", ""))
    if not isinstance(dest, str) or dest.startswith("/") or ".." in Path(dest).parts:
        raise _fail(where, f"'destination' must be a relative folder, got {dest!r}")
    extract = node.get("extract")
    if extract is not None:
        if not name.endswith(ARCHIVE_SUFFIXES):
            raise _fail(where, f"'extract' needs an archive ({', '.join(ARCHIVE_SUFFIXES)})")
        if not isinstance(extract, dict) or not extract:
            raise _fail(where, f"'extract' must map archive folders to destination folders, got {extract!r}")
        for src, dst in extract.items():
            for part in (str(src), str(dst)):
                if not part or part.startswith("/") or ".." in Path(part).parts:
                    raise _fail(where, f"'extract' paths must be relative folders, got {src!r}: {dst!r}")
        extract = {str(k): str(v) for k, v in extract.items()}
    verify = node.get("verify")
    if verify is not None:
        from src.zoo.checks import check_arguments

        if not isinstance(verify, dict) or "check" not in verify:
            raise _fail(where, f"'verify' must be a mapping {{check: <name>, <argument>: <value>}}, got {verify!r}")
        arguments = {str(k): v for k, v in verify.items() if k != "check"}
        problem = check_arguments(str(verify["check"]), arguments)
        if problem:
            raise _fail(where, problem)
        verify = (str(verify["check"]), arguments)
    return FileSpec(name, tuple(urls), size if isinstance(size, int) else None,
                    format_bytes(size) if isinstance(size, int) else str(size), kind, value, root, dest, extract,
                    verify)


def parse_entries(data: Any, source: str) -> dict[str, Entry]:
    """Entries of a manifest document (``{entries: {...}}``); raises :class:`ConfigError` naming the problem."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise ConfigError(f"{source}: expected a top-level 'entries:' mapping")
    out = {}
    for name, node in data["entries"].items():
        where = f"{source}: entry '{name}'"
        if not isinstance(node, dict):
            raise _fail(where, f"expected a mapping, got {node!r}")
        _check_keys(node, ENTRY_KEYS, where)
        if node.get("kind") not in KINDS:
            raise _fail(where, f"'kind' must be one of {', '.join(KINDS)}, got {node.get('kind')!r}")
        for key in ("description", "licence"):
            if not isinstance(node.get(key), str) or not node[key].strip():
                raise _fail(where, f"'{key}' is required")
        files = node.get("files")
        if not isinstance(files, list) or not files:
            raise _fail(where, "'files' must be a non-empty list")
        specs = tuple(_parse_file(f, node, f"{where} files[{i}]") for i, f in enumerate(files))
        if node["kind"] == "model" and (len(specs) != 1 or specs[0].extract):
            raise _fail(where, "a model entry holds exactly one weights file (not an archive)")
        out[str(name)] = Entry(str(name), node["kind"], node["description"].strip(), node["licence"].strip(), specs)
    return out


def load_manifest(extra: str | Path | None = None) -> dict[str, Entry]:
    """The shipped manifest, with the entries of ``extra`` (a user manifest) added or replacing same-named ones."""
    entries = parse_entries(yaml.safe_load(MANIFEST.read_text()), str(MANIFEST))
    if extra:
        path = Path(str(extra)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"manifest={extra}: file not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"manifest={extra}: not valid YAML ({exc})") from exc
        entries.update(parse_entries(data, str(path)))
    return entries


def closest(name: str, names: list[str], n: int = 5) -> list[str]:
    """Up to ``n`` names closest to ``name`` (case-insensitive)."""
    lower = {x.lower(): x for x in names}
    return [lower[m] for m in difflib.get_close_matches(name.lower(), list(lower), n=n, cutoff=0.4)]
