"""Sweeps: one W&B run per multirun job (read back from the offline ``.wandb`` files), image panels at the step of
their validation metrics in every logger, ``src.report`` over a sweep folder."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from src.evaluation.wandb_logs import read_wandb_folder
from tests.cli_helpers import REPO, SMOKE, ok, read_csv
from tests.cli_helpers import run_cli as _run_cli

run_cli = functools.partial(_run_cli, timeout=300)



MODELS = ("srcnn", "fsrcnn", "espcn")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """``--multirun model=srcnn,fsrcnn,espcn`` with W&B (offline), CSV and TensorBoard."""
    root = tmp_path_factory.mktemp("multirun") / "2026-01-01_12-00-00"
    ok(run_cli("src.train", "--multirun", f"model={','.join(MODELS)}", *SMOKE, "logger=[wandb,csv,tensorboard]",
               f"hydra.sweep.dir={root}"))
    return root


def test_one_wandb_run_per_job(sweep):
    runs = []
    for num, model in enumerate(MODELS):
        job = sweep / f"{num}_smoke_{model}_x4"
        (folder,) = (job / "wandb").glob("offline-run-*")  # exactly one run per job folder
        runs.append(read_wandb_folder(folder))
        run = runs[-1]
        assert run.name == f"smoke_{model}_x4-{num}"
        assert run.group == "2026-01-01_12-00-00" and run.job_type == "train"
        assert set(run.tags) >= {f"model:{model}", "data:sample", "degradation:bicubic", "experiment:smoke"}
        # the composed config, once: no hyperparameters flattened next to it by save_hyperparameters
        assert run.config["model"]["name"] == model and run.config["scale"] == 4
        assert not {"name", "arch", "optimizer", "recipe"} & set(run.config)
        results = {r["method"]: r for r in read_csv(job / "results.csv")}
        assert abs(run.summary["test/sample/psnr_y"] - float(results[model]["psnr_y"])) < 1e-4  # 4 decimals in the CSV
        # history: the panel and the metrics of the validation at step 4 share trainer/global_step
        val = [r for r in run.history if "val/sample/psnr_y" in r]
        panels = [r for r in run.history if "val/sample/panel_0" in r]
        assert [r["trainer/global_step"] for r in val] == [r["trainer/global_step"] for r in panels] == [4]
        assert [r["trainer/global_step"] for r in run.history if "train/mse" in r] == [0, 1, 2, 3]
        metrics = read_csv(job / "csv" / "metrics.csv")
        assert [(r["step"], float(r["val/sample/psnr_y"])) for r in metrics if r["val/sample/psnr_y"]] == [
            ("4", val[0]["val/sample/psnr_y"])]
    assert len({r.id for r in runs}) == 3


def test_tensorboard_panels_at_metric_step_without_hp_metric(sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(sweep / "2_smoke_espcn_x4" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "hp_metric" not in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("val/sample/psnr_y")] == [e.step for e in events.Images(
        "val/sample/panel_0")] == [4]


def test_report_tabulates_the_sweep(sweep, tmp_path):
    ok(run_cli("src.report", f"runs={sweep}", f"output={tmp_path}", f"hydra.run.dir={tmp_path / 'job'}"))
    rows = read_csv(tmp_path / "report.csv")
    trained = [(r["run"], r["method"]) for r in rows if r["method"] != "bicubic"]
    assert trained == [(f"{n}_smoke_{m}_x4", m) for n, m in enumerate(MODELS)]
    assert all(r["wandb_id"] for r in rows if r["method"] != "bicubic")


# ---- Optuna ----------------------------------------------------------------------------------------------------
def _trials(db: Path) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    summaries = optuna.get_all_study_summaries(storage=f"sqlite:///{db}")
    study = optuna.load_study(study_name=summaries[0].study_name, storage=f"sqlite:///{db}")
    return study.trials


def test_optuna_search_writes_results_and_resumes(tmp_path):
    """A 4-trial TPE search (seeded) on the smoke experiment, then the same study resumed from its SQLite
    storage for 2 more trials: 6 trials, the first 4 untouched, and the best of all 6 reported."""
    import yaml

    db = tmp_path / "study.db"
    search = ("--multirun", "hparams_search=espcn_lr", *SMOKE, f"hydra.sweeper.storage=sqlite:///{db}", "logger=[]")
    ok(run_cli("src.train", *search, "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={tmp_path / 'first'}"))
    first = _trials(db)
    assert [t.state.name for t in first] == ["COMPLETE"] * 4
    result = yaml.safe_load((tmp_path / "first" / "optimization_results.yaml").read_text())
    best = max(first, key=lambda t: t.value)
    assert result["best_value"] == pytest.approx(best.value) and result["best_params"] == best.params
    assert set(best.params) == {"model.optimizer.lr", "model.arch.num_feat"}
    assert all(10 < t.value < 40 for t in first)  # PSNR (dB) of the smoke runs: what src.train returned
    ok(run_cli("src.train", *search, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'resumed'}"))
    trials = _trials(db)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert [t.params for t in trials[:4]] == [t.params for t in first]
    resumed = yaml.safe_load((tmp_path / "resumed" / "optimization_results.yaml").read_text())
    assert resumed["best_value"] == pytest.approx(max(t.value for t in trials))


def test_diverged_trial_is_recorded_as_failed(tmp_path):
    """Two trials over two learning rates (random sampler, seed 0: 1e30 first, then 1e-3); 1e30 makes the weights
    overflow (NaN PSNR): that trial is FAIL, not a number, and the search goes on to report the other one. (Not
    the grid sampler: the plugin does not survive a failed trial that exhausts the grid.)"""
    import yaml

    db = tmp_path / "study.db"
    ok(run_cli("src.train", "--multirun", *SMOKE, "model=srcnn", "logger=[]", "hydra/sweeper=optuna",
               "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0", "hydra.sweeper.direction=maximize",
               "hydra.sweeper.max_failure_rate=1.0",
               "model.optimizer.lr=choice(1e-3,1e30)", "hydra.sweeper.n_trials=2",
               f"hydra.sweeper.storage=sqlite:///{db}", f"hydra.sweep.dir={tmp_path / 'grid'}"))
    assert [t.params["model.optimizer.lr"] for t in _trials(db)] == [1e30, 1e-3]
    trials = {t.params["model.optimizer.lr"]: t for t in _trials(db)}
    assert trials[1e30].state.name == "FAIL" and trials[1e30].value is None
    assert trials[1e-3].state.name == "COMPLETE" and 10 < trials[1e-3].value < 40
    result = yaml.safe_load((tmp_path / "grid" / "optimization_results.yaml").read_text())
    assert result["best_params"] == {"model.optimizer.lr": 1e-3}


# ---- launchers and requeue ---------------------------------------------------------------------------------------
def _log_span(path: Path) -> tuple[str, str]:
    stamps = [line[1:24] for line in path.read_text().splitlines() if line.startswith("[20")]
    return stamps[0], stamps[-1]


def test_submitit_local_runs_jobs_in_parallel_processes(tmp_path):
    ok(run_cli("src.train", "--multirun", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
               "model=srcnn,espcn", *SMOKE, "logger=[csv]", f"hydra.sweep.dir={tmp_path}"))
    jobs = [tmp_path / "0_smoke_srcnn_x4", tmp_path / "1_smoke_espcn_x4"]
    ids = set()
    for job in jobs:
        assert (job / "results.csv").is_file() and (job / "checkpoints" / "last.ckpt").is_file()
        hydra = (job / ".hydra" / "hydra.yaml").read_text()
        ids.add(next(line.split(":", 1)[1].strip(" '") for line in hydra.splitlines() if line.startswith("    id:")))
    # two submitit jobs (local processes; the id is the process id), each with its own submitit folder
    assert len(ids) == 2 and ids <= {p.name for p in (tmp_path / ".submitit").iterdir()}
    (start0, end0), (start1, end1) = (_log_span(job / "train.log") for job in jobs)
    assert start0 <= end1 and start1 <= end0  # they ran at the same time


def test_slurm_launcher_sets_trainer_nodes_and_devices():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src.config.validation import ConfigError
    from src.training.cluster import slurm_trainer_resources

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.nodes=2",
                                          "hydra.launcher.gpus_per_node=4", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.partition, launcher.cpus_per_task, launcher.mem_gb, launcher.timeout_min) == ("gpu", 8, 64, 1440)
    assert launcher.tasks_per_node == 4
    trainer = OmegaConf.create({"num_nodes": 1, "devices": 1})
    slurm_trainer_resources(trainer, launcher)
    assert (trainer.num_nodes, trainer.devices) == (2, 4)
    with pytest.raises(ConfigError, match="trainer.devices=2 but hydra.launcher.gpus_per_node=4"):
        slurm_trainer_resources(OmegaConf.create({"num_nodes": 1, "devices": 2}), launcher)
    local = OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"})
    trainer = OmegaConf.create({"num_nodes": 1, "devices": 2})
    slurm_trainer_resources(trainer, local)
    assert trainer.devices == 2


def test_requeued_job_resumes_from_last_checkpoint(tmp_path, monkeypatch):
    import torch

    from src.training.cluster import requeue_resume_path

    run = tmp_path / "run"
    ok(run_cli("src.train", *SMOKE, "logger=[csv]", f"hydra.run.dir={run}"))
    last = run / "checkpoints" / "last.ckpt"
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert requeue_resume_path(run) is None  # a first start never resumes on its own
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert requeue_resume_path(run) == last and requeue_resume_path(tmp_path / "empty") is None
    # the requeued job (same command, same folder) continues at step 4 instead of starting over
    proc = ok(run_cli("src.train", *SMOKE, "logger=[csv]", "trainer.max_steps=8", f"hydra.run.dir={run}",
                      SLURM_RESTART_COUNT="1"))
    assert "resuming from" in proc.stdout + proc.stderr
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 8
