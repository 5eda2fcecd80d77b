"""Train an SR method: ``python -m src.train [model=… data=… degradation=… scale=… trainer.…=…]``.

See ``conf/train.yaml`` for the config groups; ``src.training.run.train`` does the work.
"""

import hydra
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    from src.training.run import train

    return train(cfg)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.train")
    check_command_line("src.train", "train")
    main()
