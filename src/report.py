"""Gather runs into one comparison table and plot: ``python -m src.report runs=<dir | entity/project>``.

See ``conf/report.yaml``; ``src.evaluation.report.run_report`` does the work.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="report")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.evaluation.report import run_report

    run_report(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.report")
    check_command_line("src.report", "report")
    main()
