"""src.download / src.zoo against a local HTTP server (a thread running http.server): resume after a dropped
connection, checksums, archive layouts, idempotent reruns, mirrors, user manifests, HTTP errors, model names."""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from src.config.validation import ConfigError
from src.zoo import DownloadError, install, load_manifest, resolve_weights
from src.zoo.manifest import CHECKSUMS, ROOTS, parse_entries
from tests.cli_helpers import run_cli as _run_cli

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return _run_cli("src.download", *args, cwd=cwd, timeout=120, **(env or {}))


# ---- a local file server with Range support that can drop a connection mid-file ---------------------------------
class FileServer:
    """Serves ``root`` on 127.0.0.1; ``drop[name] = n`` cuts the next response for ``name`` after ``n`` bytes."""

    def __init__(self, root: Path):
        self.root, self.drop, self.requests = root, {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                path = server.root / name
                if not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if data.startswith(b"<!DOCTYPE html>"):
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.drop.pop(name, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    (tmp_path / "srv").mkdir()
    with FileServer(tmp_path / "srv") as server:
        yield server


@pytest.fixture
def roots(tmp_path) -> dict[str, Path]:
    return {k: tmp_path / "roots" / k for k in ROOTS}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_file_entry(name: str, url: str | list[str], data: bytes, **extra) -> dict:
    """A manifest entry (as YAML data) for one file; with ``extract=…`` a data set, else a model."""
    file = {"name": name, "url": url, "size": len(data), "sha256": sha256(data), **extra}
    return {"kind": "dataset" if "extract" in extra else "model", "description": "test entry", "licence": "test",
            "root": "weights", "destination": "", "files": [file]}


def entries_of(**entries) -> list:
    return list(parse_entries({"entries": entries}, "<test>").values())


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return bytes((i * 7919 + seed) % 251 for i in range(n))


# ---- transfers ---------------------------------------------------------------------------------------------------
def test_resume_after_dropped_connection(served, roots):
    data = payload()
    (served.root / "w.pth").write_bytes(data)
    served.drop["w.pth"] = 100_000
    [entry] = entries_of(w=one_file_entry("w.pth", f"{served.url}/w.pth", data))
    [outcome] = install([entry], roots, progress=False, retries=1)
    assert (roots["weights"] / "w.pth").read_bytes() == data and outcome.status == "downloaded"
    assert served.requests == [("w.pth", None), ("w.pth", "bytes=100000-")]
    assert [p.name for p in roots["weights"].iterdir()] == ["w.pth"]  # no .part, no lock file


def test_interrupted_download_resumes_on_the_next_run(served, roots):
    data = payload()
    (served.root / "w.pth").write_bytes(data)
    served.drop["w.pth"] = 120_000
    [entry] = entries_of(w=one_file_entry("w.pth", f"{served.url}/w.pth", data))
    with pytest.raises(DownloadError, match=r"w: w.pth: connection dropped after 120000 .*rerun to resume"):
        install([entry], roots, progress=False, retries=0)
    assert (roots["weights"] / ".w.pth.part").stat().st_size == 120_000
    assert not (roots["weights"] / "w.pth").exists()  # nothing under the final name
    install([entry], roots, progress=False, retries=0)
    assert (roots["weights"] / "w.pth").read_bytes() == data
    assert served.requests[-1] == ("w.pth", "bytes=120000-")


def test_concurrent_processes_download_once(served, roots):
    """Several ranks resolving one model name at once: one downloads, the others wait and find it present."""
    from concurrent.futures import ThreadPoolExecutor

    data = payload()
    (served.root / "w.pth").write_bytes(data)
    [entry] = entries_of(w=one_file_entry("w.pth", f"{served.url}/w.pth", data))
    with ThreadPoolExecutor(4) as pool:
        outcomes = [f.result() for f in [pool.submit(install, [entry], roots, progress=False) for _ in range(4)]]
    assert sorted(o.status for [o] in outcomes) == ["downloaded", "present", "present", "present"]
    assert len(served.requests) == 1 and (roots["weights"] / "w.pth").read_bytes() == data


def test_checksum_mismatch_leaves_nothing(served, roots):
    data = payload()
    (served.root / "w.pth").write_bytes(data)
    spec = one_file_entry("w.pth", f"{served.url}/w.pth", data)
    spec["files"][0]["sha256"] = sha256(b"something else")
    with pytest.raises(DownloadError, match=r"w: w.pth .*checksum mismatch \(sha256 [0-9a-f]{64}, expected"):
        install(entries_of(w=spec), roots, progress=False)
    assert [p.name for p in roots["weights"].iterdir()] == [".w.pth.lock"]  # nothing but the lock file


@pytest.mark.parametrize("kind", ["md5", "sha256_prefix", "git_sha1"])
def test_other_checksum_kinds(served, roots, kind):
    data = payload(5000)
    (served.root / "f.bin").write_bytes(data)
    digest = {"md5": hashlib.md5(data).hexdigest(), "sha256_prefix": sha256(data)[:8],
              "git_sha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}[kind]
    spec = one_file_entry("f.bin", f"{served.url}/f.bin", data)
    del spec["files"][0]["sha256"]
    spec["files"][0][kind] = digest
    install(entries_of(f=spec), roots, progress=False)
    assert (roots["weights"] / "f.bin").read_bytes() == data
    spec["files"][0][kind] = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    (roots["weights"] / "f.bin").unlink()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        install(entries_of(f=spec), roots, progress=False)


def test_http_404_names_entry_and_file(served, roots):
    spec = one_file_entry("gone.pth", [f"{served.url}/gone.pth", f"{served.url}/also-gone.pth"], b"x")
    with pytest.raises(DownloadError, match=r"gone: gone.pth: could not download: .*HTTP 404.*HTTP 404"):
        install(entries_of(gone=spec), roots, progress=False)
    assert not (roots["weights"] / "gone.pth").exists()


def test_html_page_instead_of_the_file(served, roots):
    page = b"<!DOCTYPE html><html><body>Google Drive can't scan this file for viruses.</body></html>"
    (served.root / "w.pth").write_bytes(page)
    entry = entries_of(w=one_file_entry("w.pth", f"{served.url}/w.pth", payload(1000)))
    with pytest.raises(DownloadError, match=r"w: w.pth: .*/w.pth answered with an HTML page instead of the file"):
        install(entry, roots, progress=False)
    assert not (roots["weights"] / "w.pth").exists() and not (roots["weights"] / ".w.pth.part").exists()


def drive_warning_page(action: str, file_id: str, uuid: str) -> bytes:
    """Google Drive's large-file answer to ``uc?export=download&id=…`` (its layout as served since 2024): a page
    whose GET form, submitted by "Download anyway", carries the confirmation in hidden inputs."""
    return (
        '<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>'
        '<div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can\'t scan this file '
        'for viruses.</p><p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id='
        f'{file_id}">stylegan2-ffhq-config-f.pt</a> (364M)</span> is too large for Google to scan for viruses. '
        'Would you still like to download this file?</p>'
        f'<form id="download-form" action="{action}" method="get">'
        '<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action" '
        'value="Download anyway"/>'
        f'<input type="hidden" name="id" value="{file_id}"><input type="hidden" name="export" value="download">'
        f'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}">'
        '</form></div></div></body></html>'
    ).encode()


def test_google_drive_confirmation_page_is_followed(served, roots):
    """The Drive link answers with its virus-scan warning form; the transfer submits it (GET with the hidden
    inputs) and gets the file; a connection dropped on the file resumes on the confirmed URL."""
    data = payload()
    page = drive_warning_page(f"{served.url}/download", "1EM87abc", "u-1")
    (served.root / "uc?export=download&id=1EM87abc").write_bytes(page)
    confirmed = "download?id=1EM87abc&export=download&confirm=t&uuid=u-1"
    (served.root / confirmed).write_bytes(data)
    served.drop[confirmed] = 50_000
    [entry] = entries_of(g=one_file_entry("g.pt", f"{served.url}/uc?export=download&id=1EM87abc", data))
    [outcome] = install([entry], roots, progress=False, retries=1)
    assert outcome.status == "downloaded" and (roots["weights"] / "g.pt").read_bytes() == data
    assert served.requests == [("uc?export=download&id=1EM87abc", None), (confirmed, None),
                               (confirmed, "bytes=50000-")]


def test_confirm_link_reads_only_confirmation_pages():
    from src.zoo.transfer import confirm_link

    base = "https://drive.google.com/uc?export=download&id=X1"
    assert confirm_link(drive_warning_page("https://drive.usercontent.google.com/download", "X1", "9f").decode(),
                        base) == "https://drive.usercontent.google.com/download?id=X1&export=download&confirm=t&uuid=9f"
    older = '<html><body><a id="uc-download-link" href="/uc?export=download&amp;confirm=Ab12&amp;id=X1">Download' \
            ' anyway</a></body></html>'
    assert confirm_link(older, base) == "https://drive.google.com/uc?export=download&confirm=Ab12&id=X1"
    assert confirm_link("<html><form action='/login' method='post'><input type='hidden' name='confirm' "
                        "value='t'></form></html>", base) is None  # a POST form (a login) is not followed
    assert confirm_link("<html><body>Quota exceeded</body></html>", base) is None


def test_full_disk_is_one_clear_error(served, roots, monkeypatch):
    import shutil
    from collections import namedtuple

    data = payload()
    (served.root / "w.pth").write_bytes(data)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(DownloadError, match=r"w: w.pth: not enough free disk in .*300.0 kB needed, 1.0 kB free"):
        install(entries_of(w=one_file_entry("w.pth", f"{served.url}/w.pth", data)), roots, progress=False)
    assert not (roots["weights"] / "w.pth").exists()


# ---- archives -----------------------------------------------------------------------------------------------------
def png_bytes(w: int, h: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_zip_extracts_into_the_data_layout(served, roots):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in (1, 2):
            zf.writestr(f"DIV2K_train_HR/{i:04d}.png", png_bytes(16, 12, i))
        zf.writestr("README.txt", "not extracted")
    data = buf.getvalue()
    (served.root / "DIV2K_train_HR.zip").write_bytes(data)
    spec = one_file_entry("DIV2K_train_HR.zip", f"{served.url}/DIV2K_train_HR.zip", data,
                          extract={"DIV2K_train_HR": "DIV2K_train_HR"})
    spec.update(root="data", destination="DIV2K")
    [outcome] = install(entries_of(div2k=spec), roots, progress=False)
    folder = roots["data"] / "DIV2K"
    assert sorted(p.name for p in (folder / "DIV2K_train_HR").iterdir()) == ["0001.png", "0002.png"]
    assert outcome.paths == [folder / "DIV2K_train_HR"]
    # no archive, no temporary folder, no README: only the mapped folder (+ the record of finished archives)
    assert sorted(p.name for p in folder.iterdir()) == [".srsuite-downloads.json", "DIV2K_train_HR"]


def test_tar_benchmark_layout_keeps_existing_sets_and_scores(served, roots):
    from src.evaluation.benchmark import load_benchmark_set

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for set_name in ("Set5", "B100"):
            add(f"benchmark/{set_name}/HR/img.png", png_bytes(24, 20, 1))
            add(f"benchmark/{set_name}/LR_bicubic/X2/imgx2.png", png_bytes(12, 10, 2))  # EDSR's LR names
    data = buf.getvalue()
    (served.root / "benchmark.tar").write_bytes(data)
    bench = roots["benchmarks"]
    (bench / "Set5" / "HR").mkdir(parents=True)
    (bench / "Set5" / "HR" / "mine.png").write_bytes(png_bytes(8, 8, 3))
    spec = one_file_entry("benchmark.tar", f"{served.url}/benchmark.tar", data,
                          extract={"benchmark/Set5": "Set5", "benchmark/B100": "BSD100"})
    spec.update(root="benchmarks", destination="")
    [outcome] = install(entries_of(benchmarks=spec), roots, progress=False)
    assert outcome.note == "kept existing Set5"
    assert [p.name for p in (bench / "Set5" / "HR").iterdir()] == ["mine.png"]  # not overwritten or merged
    images = load_benchmark_set(bench, "BSD100", 2, lr_mode="files")
    assert [i.name for i in images] == ["img.png"] and images[0].lr.shape == (3, 10, 12)


def test_archive_without_the_expected_folder_is_an_error(served, roots):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Other/0001.png", b"x")
    data = buf.getvalue()
    (served.root / "a.zip").write_bytes(data)
    spec = one_file_entry("a.zip", f"{served.url}/a.zip", data, extract={"Expected": "Expected"})
    with pytest.raises(DownloadError, match=r"a: a.zip: the archive has no folder 'Expected' \(its top level: "
                                            r"\['Other'\]\)"):
        install(entries_of(a=spec), roots, progress=False)
    # nothing extracted; the verified archive stays under its hidden temporary name (no second download)
    assert sorted(p.name for p in roots["weights"].iterdir()) == [".a.zip.lock", ".a.zip.part"]


# ---- mirrors, user manifests and the CLI -------------------------------------------------------------------------
@pytest.mark.parametrize("mirror_kind", ["url", "folder"])
def test_mirror_is_looked_up_by_file_name(served, roots, tmp_path, mirror_kind):
    data = payload(50_000)
    (served.root / "mirror").mkdir()
    (served.root / "mirror" / "w.pth").write_bytes(data)
    mirror = f"{served.url}/mirror/" if mirror_kind == "url" else str(served.root / "mirror")
    entry = entries_of(w=one_file_entry("w.pth", "https://unreachable.invalid/w.pth", data))
    install(entry, roots, mirror=mirror, progress=False)
    assert (roots["weights"] / "w.pth").read_bytes() == data
    assert all(name.startswith("mirror/") for name, _ in served.requests)


def test_user_manifest_adds_and_replaces_entries(tmp_path):
    user = tmp_path / "extra.yaml"
    data = b"weights"
    user.write_text(yaml.safe_dump({"entries": {
        "RealESRGAN_x4plus": one_file_entry("RealESRGAN_x4plus.pth", "https://example.org/mine.pth", data),
        "my_model": one_file_entry("my_model.pth", "https://example.org/my_model.pth", data)}}))
    entries = load_manifest(user)
    assert entries["RealESRGAN_x4plus"].files[0].urls == ("https://example.org/mine.pth",)
    assert entries["my_model"].files[0].checksum == sha256(data) and "div2k" in entries
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"entries": {"x": {**one_file_entry("x.pth", "https://e.org/x", data),
                                                     "license": "typo"}}}))
    with pytest.raises(ConfigError, match=r"entry 'x': unknown key 'license'. Did you mean 'licence'"):
        load_manifest(bad)


def test_manifest_consistency():
    """Every shipped entry has a URL, exactly one valid checksum, a size, a licence and a destination; model
    names are unique ignoring case; every URL is https."""
    raw = yaml.safe_load((REPO / "src" / "zoo" / "manifest.yaml").read_text())["entries"]
    entries = load_manifest()
    assert set(entries) == set(raw) and len({n.lower() for n in entries}) == len(entries)
    required = {"div2k", "flickr2k", "benchmarks", "vgg19", "vgg16", "lpips", "ma", "RealESRGAN_x4plus",
                "RealESRGAN_x2plus", "realesr-general-x4v3", "RRDB_ESRGAN_x4", "RRDB_PSNR_x4", "EDSR_x4",
                "EDSR_baseline_x4", "IMDN_x4", "LapSRN_x4", "CARN_M"}
    assert required <= set(entries)
    for name, entry in entries.items():
        assert entry.licence and entry.description, name
        for node, spec in zip(raw[name]["files"], entry.files):
            assert sum(k in node for k in CHECKSUMS) == 1, name
            assert spec.urls and all(u.startswith("https://") for u in spec.urls), name
            assert spec.size_text and spec.root in ROOTS, name
            assert "destination" in raw[name] or "destination" in node or spec.root == "weights", name
        if entry.kind == "model":
            assert len(entry.files) == 1 and entry.files[0].root == "weights", name
    # torchvision's files: the 8-hex prefix in the name is the manifest's checksum
    for name in ("vgg19", "vgg16"):
        spec = entries[name].files[0]
        assert spec.checksum_kind == "sha256_prefix" and spec.name.split("-")[1].startswith(spec.checksum)


def test_cli_download_then_rerun_does_nothing(served, tmp_path):
    data = payload(40_000)
    (served.root / "tiny.pth").write_bytes(data)
    user = tmp_path / "extra.yaml"
    user.write_text(yaml.safe_dump({"entries": {"tiny": one_file_entry("tiny.pth", f"{served.url}/tiny.pth", data)}}))
    args = ("names=[tiny]", f"manifest={user}", f"roots.weights={tmp_path / 'w'}", "progress=false")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert f"tiny: tiny.pth downloaded -> {tmp_path / 'w' / 'tiny.pth'}" in first.stdout
    again = run_cli(*args)
    assert again.returncode == 0 and "already present" in again.stdout and "Nothing to do" in again.stdout
    assert len(served.requests) == 1
    bad = run_cli("names=[div2]", "progress=false")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: names: unknown entry 'div2'")
    assert "div2k" in bad.stderr


def test_cli_list_and_help_show_every_entry():
    listing = run_cli("list")
    helped = run_cli("--help")
    assert listing.returncode == 0 and helped.returncode == 0
    for name in load_manifest():
        assert f"| `{name}` |" in listing.stdout and f"| `{name}` |" in helped.stdout
    row = next(line for line in listing.stdout.splitlines() if line.startswith("| `div2k` |"))
    assert "3.9 GB" in row or "4.0 GB" in row
    assert "$SR_DATA/DIV2K/DIV2K_train_HR" in row and "sha256" in row
    assert "| md5 |" in next(line for line in listing.stdout.splitlines() if line.startswith("| `flickr2k` |"))


# ---- model names -----------------------------------------------------------------------------------------------
def tiny_espcn_file(tmp_path: Path) -> tuple[bytes, dict]:
    import torch

    from src.archs import ESPCN

    torch.manual_seed(0)
    net = ESPCN(num_in_ch=3, num_out_ch=3, upscale=2, num_feat=8)
    path = tmp_path / "espcn.pth"
    torch.save({"params": net.state_dict()}, path)
    return path.read_bytes(), net.state_dict()


def test_resolve_weights_by_name_downloads_once(served, tmp_path, monkeypatch):
    data = payload(20_000)
    (served.root / "zoo_model.pth").write_bytes(data)
    user = tmp_path / "extra.yaml"
    entry = one_file_entry("zoo_model.pth", f"{served.url}/zoo_model.pth", data)
    user.write_text(yaml.safe_dump({"entries": {"ZooModel": entry}}))
    monkeypatch.setenv("SR_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setenv("SR_MANIFEST", str(user))
    path = resolve_weights("ZooModel", progress=False)
    assert path == tmp_path / "cache" / "zoo_model.pth" and path.read_bytes() == data
    assert resolve_weights("zoo_model.pth", progress=False) == path  # the file name works too
    assert len(served.requests) == 1
    existing = tmp_path / "mine.pth"
    existing.write_bytes(b"x")
    assert resolve_weights(str(existing)) == existing
    with pytest.raises(FileNotFoundError, match=r"'RealESRGAN_x4' is neither a file nor a model name .*closest: "
                                                r"RealESRGAN_x4plus"):
        resolve_weights("RealESRGAN_x4")


def test_evaluate_methods_and_interpolate_take_model_names(served, tmp_path, monkeypatch):
    """`methods[].weights` in evaluate and `a=`/`b=` in interpolate resolve names like `model.weights`."""
    from omegaconf import OmegaConf

    from src.evaluation.compare import parse_methods
    from src.zoo import resolve_weight_keys

    data = payload(3000)
    (served.root / "m.pth").write_bytes(data)
    user = tmp_path / "extra.yaml"
    user.write_text(yaml.safe_dump({"entries": {"M": one_file_entry("m.pth", f"{served.url}/m.pth", data)}}))
    monkeypatch.setenv("SR_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setenv("SR_MANIFEST", str(user))
    [spec] = parse_methods([{"name": "m", "model": "espcn", "weights": "M"}])
    assert spec.weights == str(tmp_path / "cache" / "m.pth")
    with pytest.raises(FileNotFoundError, match=r"methods\[0\] \(x\): weights not found: 'N'"):
        parse_methods([{"name": "x", "model": "espcn", "weights": "N"}])
    cfg = OmegaConf.create({"a": "M", "b": str(tmp_path / "cache" / "m.pth")})
    resolve_weight_keys(cfg, "a", "b")
    assert cfg.a == cfg.b == str(tmp_path / "cache" / "m.pth") and len(served.requests) == 1


def test_upscale_takes_a_model_name_through_a_mirror(served, tmp_path, monkeypatch):
    """The whole path in `src.upscale`: `model.weights=<name>` is resolved, fetched from $SR_MIRROR into
    $SR_WEIGHTS, verified and run: the output is the network's output for those weights."""
    import numpy as np
    import torch
    from hydra import compose, initialize_config_dir
    from PIL import Image

    from src.archs import ESPCN
    from src.inference.upscale import upscale

    data, state = tiny_espcn_file(tmp_path)
    (served.root / "mirror").mkdir()
    (served.root / "mirror" / "espcn_tiny_x2.pth").write_bytes(data)
    user = tmp_path / "extra.yaml"
    user.write_text(yaml.safe_dump({"entries": {"espcn_tiny_x2": one_file_entry(
        "espcn_tiny_x2.pth", "https://unreachable.invalid/espcn_tiny_x2.pth", data)}}))
    lr = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(lr).save(tmp_path / "in.png")
    monkeypatch.setenv("SR_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setenv("SR_MANIFEST", str(user))
    monkeypatch.setenv("SR_MIRROR", f"{served.url}/mirror")
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("upscale", overrides=[
            f"input={tmp_path / 'in.png'}", f"output={tmp_path / 'out'}", "model=espcn", "model.color=rgb",
            "model.arch.num_feat=8", "scale=2", "model.weights=espcn_tiny_x2", "progress=false", "tile=0"])
    [written] = upscale(cfg)
    assert (tmp_path / "cache" / "espcn_tiny_x2.pth").read_bytes() == data
    assert served.requests == [("mirror/espcn_tiny_x2.pth", None)]
    net = ESPCN(num_in_ch=3, num_out_ch=3, upscale=2, num_feat=8)
    net.load_state_dict(state)
    with torch.no_grad():
        expected = net(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)[0] * 255
    sr = torch.from_numpy(np.array(Image.open(written))).permute(2, 0, 1).float()
    assert sr.shape == (3, 20, 24) and (sr - expected).abs().max() <= 0.51


def test_torch_hub_folder_matches_torch(monkeypatch, tmp_path):
    import torch

    from src.zoo.manifest import torch_hub_checkpoints

    assert torch_hub_checkpoints() == Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert torch_hub_checkpoints() == Path(torch.hub.get_dir()) / "checkpoints" == tmp_path / "hub" / "checkpoints"


# ---- structural checks (manifest `verify:`), generator weights by name ------------------------------------------
TINY_GAN = {"size": 8, "style_dim": 8, "n_mlp": 2, "channel_multiplier": 1, "channel_max": 8}


def stylegan2_file(latent_avg: bool = True, **arch) -> bytes:
    """A checkpoint in rosinality's layout ({g_ema, latent_avg}) of a small StyleGAN2 generator, as bytes."""
    import torch

    from src.archs import StyleGAN2Generator

    torch.manual_seed(0)
    g = StyleGAN2Generator(**{**TINY_GAN, **arch})
    state = {"g_ema": g.state_dict(), **({"latent_avg": torch.zeros(g.style_dim)} if latent_avg else {})}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_verify_runs_the_structural_check_before_the_file_is_placed(served, roots):
    good = stylegan2_file()
    (served.root / "g.pt").write_bytes(good)
    verify = {"check": "stylegan2_rosinality", **TINY_GAN}
    [entry] = entries_of(g=one_file_entry("g.pt", f"{served.url}/g.pt", good, verify=verify))
    assert entry.files[0].verify == ("stylegan2_rosinality", TINY_GAN)
    install([entry], roots, progress=False)
    assert (roots["weights"] / "g.pt").read_bytes() == good

    for name, data, problem in [
        ("wide.pt", stylegan2_file(style_dim=16), r"g_ema does not fit a 8 px StyleGAN2 generator \(channel_multiplier "
                                                   r"1\): missing none; unexpected none; shape mismatch "
                                                   r"conv1.conv.modulation.weight, .* \(9\)"),
        ("noavg.pt", stylegan2_file(latent_avg=False), r"latent_avg: expected a tensor of shape \(8,\), got None"),
        ("junk.pt", b"not a checkpoint", r"does not load with torch.load\(weights_only=True\)"),
    ]:
        (served.root / name).write_bytes(data)
        [bad] = entries_of(b=one_file_entry(name, f"{served.url}/{name}", data, verify=verify))
        with pytest.raises(DownloadError, match=rf"b: {name}: the downloaded file fails the stylegan2_rosinality "
                                                rf"check \(.*{problem}.*\); it was removed"):
            install([bad], roots, progress=False)
        assert not (roots["weights"] / name).exists() and not (roots["weights"] / f".{name}.part").exists()


def test_verify_entries_are_checked_when_the_manifest_is_read():
    data = b"x"
    for verify, message in [
        ({"check": "stylegan3"}, r"'verify.check' must be one of stylegan2_rosinality, got 'stylegan3'"),
        ({"check": "stylegan2_rosinality", "resolution": 1024}, r"verify: unknown argument 'resolution' of "
                                                                 r"stylegan2_rosinality; valid: size, style_dim"),
        ("stylegan2_rosinality", r"'verify' must be a mapping \{check: <name>"),
    ]:
        with pytest.raises(ConfigError, match=message):
            entries_of(g=one_file_entry("g.pt", "https://example.org/g.pt", data, verify=verify))


def test_shipped_stylegan2_entry_checks_the_generator_of_its_config():
    """The FFHQ file's structural check builds exactly conf/generator/stylegan2_ffhq.yaml's generator."""
    import inspect

    from src.zoo.checks import stylegan2_rosinality

    spec = load_manifest()["stylegan2_ffhq_config_f"].files[0]
    arch = yaml.safe_load((REPO / "conf" / "generator" / "stylegan2_ffhq.yaml").read_text())["arch"]
    defaults = {k: p.default for k, p in inspect.signature(stylegan2_rosinality).parameters.items() if k != "path"}
    check, arguments = spec.verify
    settings = {**defaults, **arguments}
    assert check == "stylegan2_rosinality" and settings["latent_avg"] is True
    assert {k: settings[k] for k in ("size", "style_dim", "n_mlp", "channel_multiplier", "channel_max")} == \
        {k: arch[k] for k in ("size", "style_dim", "n_mlp", "channel_multiplier", "channel_max")}
    assert spec.size == 381462551 and spec.checksum_kind == "sha256"
    assert any("drive.google.com" in u for u in spec.urls) and spec.urls[0].startswith("https://huggingface.co/")


def test_generator_weights_take_a_model_name(served, tmp_path, monkeypatch):
    """generator.weights=<zoo name> (python -m src.pulse / model=pulse) downloads, checks and loads the file."""
    import torch

    from src.methods.pulse import load_generator

    data = stylegan2_file()
    (served.root / "tiny-gan.pt").write_bytes(data)
    user = tmp_path / "extra.yaml"
    entry = one_file_entry("tiny-gan.pt", f"{served.url}/tiny-gan.pt", data,
                           verify={"check": "stylegan2_rosinality", **TINY_GAN})
    user.write_text(yaml.safe_dump({"entries": {"tiny_gan": entry}}))
    monkeypatch.setenv("SR_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setenv("SR_MANIFEST", str(user))
    arch = {"_target_": "src.archs.StyleGAN2Generator", **TINY_GAN}
    g = load_generator(arch, "tiny_gan")
    assert (tmp_path / "cache" / "tiny-gan.pt").read_bytes() == data
    state = torch.load(tmp_path / "cache" / "tiny-gan.pt", weights_only=True)["g_ema"]
    assert all(torch.equal(v, state[k]) for k, v in g.state_dict().items())
    with pytest.raises(FileNotFoundError, match=r"generator.weights=tiny_ga: .*neither a file nor a model name.*"
                                                r"closest: tiny_gan"):
        load_generator(arch, "tiny_ga")
