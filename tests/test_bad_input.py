"""Bad input is named in one ``error:`` line (exit 2, no traceback): broken weights files, checkpoints of another
model or scale, existing outputs (issue 12, items 8 and 11)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest
import torch

from src.methods import LIGHTNING_NET_PREFIXES
from src.weights.checkpoints import WeightsError, check_resume_checkpoint, read_file, read_weights
from tests.cli_helpers import REPO
from tests.cli_helpers import run_cli as _run_cli

run_cli = functools.partial(_run_cli, timeout=300)

ESPCN_ARCH = {"_target_": "src.archs.ESPCN", "num_in_ch": 1, "num_out_ch": 1, "upscale": 4, "num_feat": 8}


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line of a failed run (exit 2, nothing that looks like a traceback)."""
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def espcn_module(scale: int, num_feat: int = 8):
    from src.methods import SupervisedSR

    return SupervisedSR(name="espcn", arch=ESPCN_ARCH | {"upscale": scale, "num_feat": num_feat}, scale=scale,
                        color="y", loss="mse")


def lightning_checkpoint(path: Path, module) -> Path:
    """What ``src.train`` writes (Lightning's keys), with the module's own weights and hyperparameters."""
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "global_step": 7,
                "epoch": 0, "loops": {}, "optimizer_states": []}, path)
    return path


class Payload:
    """Unpickling this would call ``print``: a file that holds code."""

    def __reduce__(self):
        return (print, ("unpickled",))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_weights")
    good = d / "good.pth"
    torch.save({"params": espcn_module(4).sr.net.state_dict()}, good)
    data = good.read_bytes()
    files = {"good": good}
    files["truncated"] = d / "truncated.pth"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"] = d / "notes.pth"
    files["text"].write_text("hello world\nthis is not a network\n")
    files["html"] = d / "download.pth"
    files["html"].write_text("<!DOCTYPE html><html><body>404</body></html>")
    files["empty"] = d / "empty.pth"
    files["empty"].write_bytes(b"")
    files["code"] = d / "code.pth"
    torch.save({"params": {}, "extra": Payload()}, files["code"])
    files["truncated_st"] = d / "cut.safetensors"
    from safetensors.torch import save_file

    save_file(espcn_module(4).sr.net.state_dict(), str(d / "full.safetensors"))
    files["truncated_st"].write_bytes((d / "full.safetensors").read_bytes()[:300])
    return files


@pytest.mark.parametrize("kind, expected", [
    ("truncated", r"truncated\.pth: a truncated or damaged PyTorch \(zip\) archive"),
    ("text", r"notes\.pth: a text file, not weights \(starts with 'hello world'\)"),
    ("html", r"download\.pth: an HTML page"),
    ("empty", r"empty\.pth: the file is empty \(0 bytes\)"),
    ("code", r"code\.pth: refusing to unpickle it"),
    ("truncated_st", r"cut\.safetensors: cannot read it as \.safetensors"),
])
def test_unreadable_weights_file_says_what_it_is(bad_files, kind, expected):
    with pytest.raises(WeightsError, match=expected) as info:
        read_file(bad_files[kind])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("module, kind, expected", [
    ("src.evaluate", "truncated", "a truncated or damaged PyTorch (zip) archive"),
    ("src.upscale", "text", "a text file, not weights"),
    ("src.interpolate", "code", "refusing to unpickle it"),
])
def test_bad_weights_file_is_one_error_line_in_each_cli(bad_files, tmp_path, module, kind, expected):
    path = bad_files[kind]
    args = {
        "src.evaluate": [f"model.weights={path}"],
        "src.upscale": [f"model.weights={path}", f"input={REPO / 'benchmarks/Set5/HR/baby.png'}",
                        f"output={tmp_path / 'out'}"],
        "src.interpolate": [f"a={path}", f"b={bad_files['good']}", f"output={tmp_path / 'i.pth'}"],
    }[module]
    line = one_error_line(run_cli(module, "model=espcn", *args, f"hydra.run.dir={tmp_path / 'run'}"))
    assert str(path) in line and expected in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "i.pth").exists()


def test_resume_checkpoint_of_another_scale_or_network_is_refused(tmp_path):
    ckpt = lightning_checkpoint(tmp_path / "x4.ckpt", espcn_module(4))
    check_resume_checkpoint(ckpt, espcn_module(4))  # the same model: accepted
    with pytest.raises(WeightsError, match=r"x4\.ckpt: a src\.train checkpoint \(espcn x4, step 7\), but this run "
                                           r"is espcn x2 \(scale differs\)"):
        check_resume_checkpoint(ckpt, espcn_module(2))
    with pytest.raises(WeightsError, match=r"whose network differs from this run's \(shape mismatches \(5\): "
                                           r"sr\.net\.conv1\.weight: file \(8, 1, 5, 5\) vs run \(16, 1, 5, 5\)"):
        check_resume_checkpoint(ckpt, espcn_module(4, num_feat=16))
    weights_only = tmp_path / "w.pth"
    torch.save({"params": espcn_module(4).sr.net.state_dict()}, weights_only)
    with pytest.raises(WeightsError, match=r"resuming needs a Lightning checkpoint written by src\.train.*"
                                           r"pass model\.weights="):
        check_resume_checkpoint(weights_only, espcn_module(4))
    # as model.weights, a checkpoint of another scale names what it is and the mismatching shapes
    with pytest.raises(WeightsError, match=r"\(a src\.train checkpoint \(espcn x4, step 7\)\).*does not match ESPCN: "
                                           r"2 shape mismatches"):
        read_weights(ckpt, espcn_module(2).sr.net, LIGHTNING_NET_PREFIXES)


def test_train_refuses_a_checkpoint_of_another_scale_before_training(tmp_path):
    ckpt = lightning_checkpoint(tmp_path / "x4.ckpt", espcn_module(4, num_feat=64))
    proc = run_cli("src.train", "experiment=smoke", "logger=[]", "scale=2", f"ckpt_path={ckpt}",
                   f"hydra.run.dir={tmp_path / 'run'}")
    line = one_error_line(proc)
    assert f"ckpt_path={ckpt}" in line and "espcn x4" in line and "this run is espcn x2" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_export_refuses_to_overwrite(bad_files, tmp_path, capsys):
    from src.config.command_line import run_in_process

    def main(argv):
        return run_in_process("src.export", argv)

    out = tmp_path / "espcn.pth"
    out.write_bytes(b"keep me")
    assert main([f"ckpt={bad_files['good']}", f"output={out}"]) == 2
    assert "already exists: pass overwrite=true" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main([f"ckpt={bad_files['good']}", f"output={out}", "overwrite=true"]) == 0
    assert set(torch.load(out, weights_only=True)) == {"params", "params_ema", "srsuite"}  # srsuite: for model=auto


def test_upscale_without_weights_names_only_its_own_keys():
    from omegaconf import OmegaConf

    from src.methods.loading import build_eval_model

    model_cfg = OmegaConf.create({"_target_": "src.methods.SupervisedSR", "name": "espcn", "arch": ESPCN_ARCH,
                                  "input": "lr", "color": "y", "weights": None})
    with pytest.raises(ValueError, match="needs trained weights") as info:
        build_eval_model(model_cfg, 4, None, ckpt_key=None)  # as src.upscale calls it
    assert "model.weights=" in str(info.value) and "ckpt_path" not in str(info.value)
    with pytest.raises(ValueError, match="pass ckpt_path=<Lightning checkpoint> or model.weights="):
        build_eval_model(model_cfg, 4, None)  # as src.evaluate calls it
