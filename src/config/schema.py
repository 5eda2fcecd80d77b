"""Typed schemas of the entry points' configs, registered in Hydra's ConfigStore.

Each ``conf/<entry>.yaml`` starts its defaults list with ``<entry>_schema`` (the dataclass below): Hydra merges
the YAML onto it, so a key the schema lacks is an error (named with the closest key by
:mod:`src.config.command_line` and :func:`src.config.validation.validate`), and a value of the wrong type is
refused when the config is composed. The schemas hold the keys and their types (every value is ``MISSING``
here); the values live in ``conf/``.

Types: text and switches are typed (``str``, ``bool``, lists of ``str``); numeric knobs are ``Any`` here because
:data:`src.config.ranges.RANGES` checks their type and range with one message per key (``data.patch_size=7.5:
expected an integer >= 1``), which also covers values that OmegaConf would coerce (``true`` -> 1). Nodes whose keys
depend on a group option (``model``, ``degradation``, ``data``'s data-set specific keys, ``logger``, ``strategy``)
are ``Any``: their keys are checked against the constructor of their ``_target_``.

:func:`keys_of` gives a schema's keys (what the ``*_KEYS`` tuples held before).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# ---- nodes ------------------------------------------------------------------------------------------------------


@dataclass
class MetricsConfig:
    """``metrics``: what validation / evaluation computes (src/metrics/suite.py)."""

    names: list[str] = MISSING
    y_rounding: bool = MISSING
    quantize_sr: bool = MISSING
    lpips_net: str = MISSING
    lpips_weights: str = MISSING
    ma_model: str | None = MISSING
    nr_crop_border: Any = MISSING


@dataclass
class CheckpointConfig:
    """``checkpoint`` of src.train."""

    save_last: bool = MISSING
    save_top_k: Any = MISSING
    every_n_train_steps: Any = MISSING


@dataclass
class GuardConfig:
    """``guard`` of src.train: the divergence guard (src/methods/guard.py)."""

    max_nonfinite_steps: Any = MISSING
    window: Any = MISSING
    loss_growth: Any = MISSING
    d_loss_floor: Any = MISSING


@dataclass
class ReportConfig:
    """``report`` of src.train: the held-out table after training."""

    enabled: bool = MISSING
    panel_images: Any = MISSING
    crop: Any = MISSING


@dataclass
class TrainerConfig:
    """``trainer``: ``lightning.Trainer`` arguments (any other Trainer argument with ``+trainer.<name>=…``)."""

    accelerator: str = MISSING
    devices: Any = MISSING
    num_nodes: Any = MISSING
    precision: Any = MISSING
    max_steps: Any = MISSING
    max_epochs: Any = MISSING
    max_time: Any = MISSING
    val_check_interval: Any = MISSING
    check_val_every_n_epoch: Any = MISSING
    limit_val_batches: Any = MISSING
    num_sanity_val_steps: Any = MISSING
    log_every_n_steps: Any = MISSING
    gradient_clip_val: Any = MISSING
    gradient_clip_algorithm: str = MISSING
    accumulate_grad_batches: Any = MISSING
    deterministic: Any = MISSING
    benchmark: bool | None = MISSING
    enable_progress_bar: bool = MISSING
    enable_model_summary: bool = MISSING


@dataclass
class BenchmarksConfig:
    """``benchmarks`` of src.evaluate / src.interpolate (src/evaluation/benchmark.py)."""

    root: str = MISSING
    sets: list[str] = MISSING
    scales: Any = MISSING
    lr: str = MISSING
    matlab: str = MISSING
    gray: str = MISSING
    quantize_lr: bool = MISSING


@dataclass
class SamplesConfig:
    """``samples``: benchmark images saved as bicubic | SR | HR crops."""

    images: list[str] = MISSING
    crop: Any = MISSING


@dataclass
class CompareConfig:
    """``compare`` of src.evaluate (methods mode)."""

    images: list[str] = MISSING
    crop: Any = MISSING
    plot_metric: str = MISSING


@dataclass
class MethodEntry:
    """One entry of ``methods`` of src.evaluate."""

    name: str | None = MISSING
    model: str = MISSING
    weights: str | None = MISSING
    overrides: Any = MISSING


@dataclass
class DownloadRootsConfig:
    """``roots`` of src.download: what a manifest file's ``root:`` stands for."""

    data: str = MISSING
    benchmarks: str = MISSING
    weights: str = MISSING
    torch_hub: str | None = MISSING


@dataclass
class RecipeConfig:
    """``model.recipe``: a paper's training recipe; conf/train.yaml hands it to ``data`` and ``trainer``."""

    batch_size: Any = MISSING
    patch_size: Any = MISSING  # HR px
    max_steps: Any = MISSING
    train_scales: Any = None  # multi-scale training (VDSR, DRRN, CARN): a scale per batch


@dataclass
class GeneratorConfig:
    """``generator`` of src.pulse / ``model.generator`` of model=pulse (conf/generator/)."""

    arch: Any = MISSING  # the generator's constructor (``_target_`` + arguments); null: read from the file
    weights: str | None = MISSING


@dataclass
class DataConfig:
    """Keys every ``data`` option has (conf/data/*.yaml); data-set specific keys (``train_dirs``, ``train_photos``
    …) are checked against the ``_target_`` DataModule's constructor."""

    scale: Any = MISSING
    val_name: str = MISSING
    patch_size: Any = MISSING
    batch_size: Any = MISSING
    train_scales: Any = MISSING
    num_workers: Any = MISSING
    repeat: Any = MISSING
    cache: bool = MISSING
    on_bad_file: str = MISSING
    val_crop: Any = MISSING
    val_limit: Any = MISSING
    layout: str = MISSING


# ---- entry points ------------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """``python -m src.train`` (conf/train.yaml)."""

    model: Any = MISSING
    data: Any = MISSING
    degradation: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    strategy: Any = MISSING
    logger: Any = None  # conf/logger: a list of options; logger=[] selects none
    scale: Any = MISSING
    seed: Any = MISSING
    ckpt_path: str | None = MISSING
    objective: str = MISSING
    run_name: str = MISSING
    channels_last: bool = MISSING
    perceptual_weights: str = MISSING
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


@dataclass
class EvaluateConfig:
    """``python -m src.evaluate`` (conf/evaluate.yaml)."""

    model: Any = MISSING
    degradation: Any = None  # selected by models that train on a degradation (realesrgan); never used here
    scale: Any = MISSING
    ckpt_path: str | None = MISSING
    device: str = MISSING
    channels_last: bool = MISSING
    ensemble: bool = MISSING
    postprocess: str | None = MISSING
    bp_iterations: Any = MISSING
    tile: Any = MISSING
    tile_overlap: Any = MISSING
    run_name: str = MISSING
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    benchmarks: BenchmarksConfig = field(default_factory=BenchmarksConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    methods: Any = MISSING  # entries: MethodEntry (checked one by one: they may be free text)
    compare: CompareConfig = field(default_factory=CompareConfig)


@dataclass
class UpscaleConfig:
    """``python -m src.upscale`` (conf/upscale.yaml)."""

    model: Any = MISSING
    degradation: Any = None  # selected by models that train on a degradation (realesrgan); never used here
    input: Any = MISSING
    output: str = MISSING
    scale: Any = MISSING
    tile: Any = MISSING
    tile_overlap: Any = MISSING
    pre_pad: Any = MISSING
    ensemble: bool = MISSING
    postprocess: str = MISSING
    bp_iterations: Any = MISSING
    precision: str = MISSING
    device: str = MISSING
    overwrite: bool = MISSING
    suffix: str | None = MISSING
    progress: bool = MISSING
    channels_last: bool = MISSING
    run_name: str = MISSING


@dataclass
class DegradeConfig:
    """``python -m src.degrade`` (conf/degrade.yaml)."""

    degradation: Any = MISSING
    input: str = MISSING
    output: str = MISSING
    scale: Any = MISSING
    seed: Any = MISSING
    count: Any = MISSING
    save_hr: bool = MISSING
    overwrite: bool = MISSING
    device: str = MISSING
    run_name: str = MISSING


@dataclass
class InterpolateConfig:
    """``python -m src.interpolate`` (conf/interpolate.yaml)."""

    model: Any = MISSING
    degradation: Any = None  # selected by models that train on a degradation (realesrgan); never used here
    a: str = MISSING
    b: str = MISSING
    alpha: Any = MISSING
    alphas: Any = MISSING
    output: str = MISSING
    overwrite: bool = MISSING
    evaluate: bool = MISSING
    scale: Any = MISSING
    device: str = MISSING
    channels_last: bool = MISSING
    run_name: str = MISSING
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    benchmarks: BenchmarksConfig = field(default_factory=BenchmarksConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)


@dataclass
class ReportEntryConfig:
    """``python -m src.report`` (conf/report.yaml)."""

    runs: str = MISSING
    output: str | None = MISSING
    plot_metric: str = MISSING
    run_name: str = MISSING


@dataclass
class DownloadConfig:
    """``python -m src.download`` (conf/download.yaml)."""

    names: builtins.list[str] = MISSING
    list: bool = MISSING
    mirror: str | None = MISSING
    manifest: str | None = MISSING
    progress: bool = MISSING
    keep_archives: bool = MISSING
    retries: Any = MISSING
    roots: DownloadRootsConfig = field(default_factory=DownloadRootsConfig)


@dataclass
class PulseConfig:
    """``python -m src.pulse`` (conf/pulse.yaml)."""

    generator: Any = MISSING
    search: Any = MISSING
    input: Any = MISSING
    output: str = MISSING
    scale: Any = MISSING
    device: str = MISSING
    overwrite: bool = MISSING
    run_name: str = MISSING


@dataclass
class ExportConfig:
    """``python -m src.export`` (conf/export.yaml)."""

    degradation: Any = None  # selected by models that train on a degradation (realesrgan); never used here
    model: Any = None  # a conf/model option for plain weights files (its node is composed again by the export)
    ckpt: str = MISSING
    output: str = MISSING
    format: str | None = MISSING
    half: bool = MISSING
    overwrite: bool = MISSING
    scale: Any = MISSING
    layout: str = MISSING


# entry point -> its schema; ``<config name>_schema`` in the ConfigStore. An entry point that becomes a Hydra main
# adds its schema here and ``- <name>_schema`` first in its conf/<name>.yaml. (src.prepare's schema is the
# PrepareConfig dataclass of src/data/prepare.py, which also holds its defaults.)
ENTRY_SCHEMAS: dict[str, type] = {
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "upscale": UpscaleConfig,
    "degrade": DegradeConfig,
    "interpolate": InterpolateConfig,
    "report": ReportEntryConfig,
    "download": DownloadConfig,
    "pulse": PulseConfig,
    "export": ExportConfig,
}


def keys_of(schema: type) -> tuple[str, ...]:
    """The keys of a schema dataclass, in declaration order."""
    return tuple(f.name for f in fields(schema))


def register_schemas() -> None:
    """Store every entry point's schema as ``<name>_schema`` in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    for name, schema in ENTRY_SCHEMAS.items():
        store.store(name=f"{name}_schema", node=schema)
