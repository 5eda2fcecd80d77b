"""Getting one manifest file onto disk, verified: HTTP(S) with resume, or a copy from a mirror folder.

The bytes go to ``<destination>/.<name>.part``; an interrupted transfer (dropped connection, Ctrl-C, a killed
job) resumes from there with an HTTP ``Range`` request, on the next retry or the next run. Nothing is moved
into place before the size and checksum match. Standard library HTTP (``urllib``) is enough: one sequential
stream per file, hashed after the transfer.

Google Drive answers a large file's ``uc?export=download&id=…`` link with an HTML "can't scan this file for
viruses" page instead of the file: a form (``action`` = the download host, hidden ``id`` / ``export`` / ``confirm`` /
``uuid`` inputs; older pages: a link carrying ``confirm=``) that the browser submits. :func:`confirm_link` reads that
form and the transfer follows it (cookies kept, at most two hops); any other HTML page is an error.
"""

from __future__ import annotations

import errno
import hashlib
import html.parser
import http.client
import http.cookiejar
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from src.zoo.manifest import CHECKSUM_LABEL, FileSpec, format_bytes

CHUNK = 1 << 20
USER_AGENT = "srsuite-download/1.0"


class DownloadError(ValueError):
    """A download that failed (HTTP error, checksum mismatch, full disk …); the message names entry and file."""


def part_path(folder: Path, spec: FileSpec) -> Path:
    return folder / f".{spec.name}.part"


def digest(path: Path, kind: str) -> str:
    """Hex digest of ``path`` in the manifest's checksum ``kind`` (``sha256_prefix`` gives the full sha256)."""
    h = hashlib.md5() if kind == "md5" else hashlib.sha1() if kind == "git_sha1" else hashlib.sha256()
    if kind == "git_sha1":
        h.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def matches(path: Path, spec: FileSpec) -> bool:
    got = digest(path, spec.checksum_kind)
    return got.startswith(spec.checksum) if spec.checksum_kind == "sha256_prefix" else got == spec.checksum


def verify(path: Path, spec: FileSpec, label: str) -> None:
    """Raise :class:`DownloadError` (and delete ``path``) unless its size and checksum are the manifest's."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        path.unlink()
        raise DownloadError(f"{label}: size {size} bytes, expected {spec.size} (the partial file was removed)")
    if not matches(path, spec):
        got = digest(path, spec.checksum_kind)
        path.unlink()
        raise DownloadError(
            f"{label}: checksum mismatch ({CHECKSUM_LABEL[spec.checksum_kind]} {got}, expected {spec.checksum}); "
            "the file was removed"
        )


def _check_free_space(folder: Path, needed: int, label: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DownloadError(
            f"{label}: not enough free disk in {folder}: {format_bytes(needed)} needed, {format_bytes(free)} free"
        )


@contextmanager
def _writing(part: Path, label: str, append: bool) -> Iterator:
    try:
        with part.open("ab" if append else "wb") as f:
            yield f
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DownloadError(f"{label}: disk full while writing {part} ({exc.strerror}); free space and rerun: "
                                "the transfer resumes") from exc
        raise


class _Progress:
    """A rich progress bar (bytes, rate, ETA) for one file; a no-op when disabled."""

    def __init__(self, enabled: bool, label: str, total: int | None):
        self.bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeRemainingColumn(), transient=False)
            self.task = self.bar.add_task(label, total=total)
            self.bar.start()

    def start_at(self, done: int, total: int | None) -> None:
        if self.bar:
            self.bar.update(self.task, completed=done, total=total)

    def advance(self, n: int) -> None:
        if self.bar:
            self.bar.update(self.task, advance=n)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


class _DroppedError(Exception):
    """The connection ended before the announced length: resumable."""


class _HtmlPageError(Exception):
    """The server sent a web page (login, quota, confirmation) instead of the file: try the next source."""


class _ConfirmPage(Exception):  # noqa: N818 - a signal, not an error
    """A download-confirmation page (Google Drive's virus-scan warning): ``next_url`` fetches the file."""

    def __init__(self, next_url: str):
        super().__init__(next_url)
        self.next_url = next_url


class _ConfirmForm(html.parser.HTMLParser):
    """Collects the forms (action, method, hidden inputs) and the links of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), a.get("method", "get").lower(), {}))
        elif tag == "input" and self.forms and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.forms[-1][2][a["name"]] = a.get("value", "")
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])


def confirm_link(page: str, base_url: str) -> str | None:
    """The URL that Google Drive's download-confirmation page submits (a GET form with a hidden ``confirm``
    input, or an older page's link carrying ``confirm=``), absolute against ``base_url``; ``None`` for any other
    page."""
    parser = _ConfirmForm()
    parser.feed(page)
    for action, method, fields in parser.forms:
        if method == "get" and "confirm" in fields:
            target = urllib.parse.urljoin(base_url, action or base_url)
            return f"{target.split('?')[0]}?{urllib.parse.urlencode(fields)}"
    for href in parser.links:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)
        if "confirm" in query and "id" in query:
            return urllib.parse.urljoin(base_url, href)
    return None


MAX_PAGE = 1 << 20  # bytes of an HTML page read to look for a confirmation form


def _http_once(url: str, part: Path, label: str, spec: FileSpec, progress: _Progress, timeout: float,
               opener: urllib.request.OpenerDirector | None = None) -> None:
    have = part.stat().st_size if part.exists() else 0
    if spec.size is not None and have >= spec.size:
        return  # complete (or oversized: the checksum decides)
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        request = urllib.request.Request(url, headers=headers)
        resp = opener.open(request, timeout=timeout) if opener else urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part is complete
            return
        raise
    with resp:
        if resp.headers.get_content_type() == "text/html" and not spec.name.endswith((".html", ".htm")):
            page = resp.read(MAX_PAGE).decode(resp.headers.get_content_charset() or "utf-8", "replace")
            next_url = confirm_link(page, resp.geturl())
            if next_url:
                raise _ConfirmPage(next_url)
            raise _HtmlPageError(f"{url} answered with an HTML page instead of the file (a login, quota or "
                                 "confirmation page?)")
        append = have > 0 and resp.status == 206
        start = have if append else 0
        length = resp.headers.get("Content-Length")
        expected_end = start + int(length) if length is not None else spec.size
        progress.start_at(start, spec.size or expected_end)
        _check_free_space(part.parent, (expected_end or start) - start, label)
        written = start
        with _writing(part, label, append) as f:
            try:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    written += len(chunk)
                    progress.advance(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                raise _DroppedError(f"connection dropped after {written} bytes ({exc})") from exc
    if expected_end is not None and written < expected_end:
        raise _DroppedError(f"connection dropped after {written} of {expected_end} bytes")


def _from_url(url: str, part: Path, spec: FileSpec, label: str, show: bool, retries: int, timeout: float) -> None:
    progress = _Progress(show, label, spec.size)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    first = url
    try:
        for attempt in range(retries + 1):
            try:
                for _ in range(3):  # the URL, then at most two confirmation pages
                    try:
                        _http_once(url, part, label, spec, progress, timeout, opener)
                        return
                    except _ConfirmPage as page:
                        url = page.next_url
                raise _HtmlPageError(f"{first} keeps answering with a download-confirmation page")
            except _DroppedError as exc:
                if attempt == retries:
                    raise DownloadError(
                        f"{label}: {exc} from {url}; the partial file {part} is kept: rerun to resume") from exc
    finally:
        progress.close()


def _from_folder(src: Path, part: Path, spec: FileSpec, label: str, show: bool) -> None:
    progress = _Progress(show, label, src.stat().st_size)
    _check_free_space(part.parent, src.stat().st_size, label)
    try:
        with src.open("rb") as fin, _writing(part, label, append=False) as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
                progress.advance(len(chunk))
    finally:
        progress.close()


def sources(spec: FileSpec, mirror: str | None) -> list[str]:
    """Where to look for ``spec``, in order: the mirror (``<mirror>/<file name>``, URL or folder), then the
    manifest's URLs."""
    if not mirror:
        return list(spec.urls)
    local = "://" not in mirror
    return [str(Path(mirror).expanduser() / spec.name) if local else f"{mirror.rstrip('/')}/{spec.name}", *spec.urls]


def fetch(spec: FileSpec, folder: Path, label: str, *, mirror: str | None = None, progress: bool = True,
          retries: int = 3, timeout: float = 60.0) -> Path:
    """Bring ``spec`` to ``folder/.<name>.part`` with its size and checksum verified; returns that path.

    Sources are tried in order (:func:`sources`); a missing file or an HTTP error moves on to the next one, and
    when all fail the :class:`DownloadError` lists each. A dropped connection is resumed ``retries`` times."""
    folder.mkdir(parents=True, exist_ok=True)
    part = part_path(folder, spec)
    failures = []
    for src in sources(spec, mirror):
        try:
            if "://" not in src:  # a mirror folder
                if not Path(src).is_file():
                    failures.append(f"{src}: not found")
                    continue
                _from_folder(Path(src), part, spec, label, progress)
            else:
                _from_url(src, part, spec, label, progress, retries, timeout)
        except urllib.error.HTTPError as exc:
            failures.append(f"{src}: HTTP {exc.code} {exc.reason}")
            continue
        except _HtmlPageError as exc:
            failures.append(str(exc))
            continue
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            reason = getattr(exc, "reason", exc)
            failures.append(f"{src}: {reason}")
            continue
        verify(part, spec, f"{label} (from {src})")
        return part
    raise DownloadError(f"{label}: could not download: " + "; ".join(failures))
