"""Export a network: ``python -m src.export ckpt=<file> output=<file> [format=pth|safetensors|onnx|torchscript]``.

See ``conf/export.yaml`` (``--help`` lists the keys); ``src.weights.export.run_export`` does the work.
"""

import hydra
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from src.weights.export import run_export

    hydra_cfg = HydraConfig.get()
    model_overrides = [o for o in hydra_cfg.overrides.task if o.startswith("model.")]
    run_export(cfg, hydra_cfg.runtime.choices.get("model"), model_overrides)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.export")
    check_command_line("src.export", "export")
    main()
