"""Network interpolation (ESRGAN): ``python -m src.interpolate model=rrdb a=<psnr> b=<gan> alpha=0.8 output=<file>``.

``alphas=[0,0.2,0.4,0.6,0.8,1]`` writes a series into the folder ``output``; with ``evaluate=true`` each is
scored on the benchmark sets and the PSNR-vs-NIQE/LPIPS plot is written (``metrics.names=[niqe]`` or ``[lpips]``).
See ``conf/interpolate.yaml``; ``src.weights.interpolation`` does the work.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="interpolate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.weights.interpolation import run_interpolation

    run_interpolation(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.interpolate")
    check_command_line("src.interpolate", "interpolate")
    main()
