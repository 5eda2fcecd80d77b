"""W&B runs offline unless the user configured it; the mode resolution in every case."""

from __future__ import annotations

import pytest

from src.training.loggers import resolve_wandb_mode, wandb_is_configured


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    return tmp_path


def test_offline_without_any_configuration(clean_env):
    assert not wandb_is_configured()
    assert resolve_wandb_mode("auto") == "offline"


def test_online_with_api_key_or_login(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    (clean_env / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "y" * 40 + "\n")
    assert resolve_wandb_mode("auto") == "online"


def test_env_mode_wins_over_auto(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("auto") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert resolve_wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY")
    assert resolve_wandb_mode("auto") == "online"


def test_explicit_mode_and_bad_mode(clean_env):
    assert resolve_wandb_mode("online") == "online"
    assert resolve_wandb_mode("disabled") == "disabled"
    with pytest.raises(ValueError, match="logger.wandb.mode"):
        resolve_wandb_mode("cloud")
