"""Score a method on benchmark sets: ``python -m src.evaluate model=<m> [ckpt_path=…] benchmarks.root=…``.

See ``conf/evaluate.yaml``; ``src.evaluation.run.evaluate`` does the work.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.evaluation.run import evaluate

    evaluate(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.evaluate")
    check_command_line("src.evaluate", "evaluate")
    main()
