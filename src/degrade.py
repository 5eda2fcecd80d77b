"""Write degraded examples of your images: ``python -m src.degrade input=<img|folder> output=<dir>
[degradation=realesrgan|classical|bicubic scale=4 seed=0 count=1]``.

See ``conf/degrade.yaml``; ``src.data.degraded_examples.degrade`` does the work.
"""

import hydra
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="degrade")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from src.data.degraded_examples import degrade

    degrade(cfg, HydraConfig.get().runtime.choices.get("degradation", "degradation"))


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.degrade")
    check_command_line("src.degrade", "degrade")
    main()
