"""Cut HR images into sub-images and make LR folders: ``python -m src.prepare input=<folder> output=<folder>
[crop=480 step=240 thresh=48 lr_scales=[2,3,4] workers=8 …]``.

See ``conf/prepare.yaml`` (``--help`` lists the keys); ``src.data.prepare.run_prepare`` does the work.
"""

import hydra
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare")
@exit_on_user_error
def main(cfg: DictConfig) -> dict:
    from src.data.prepare import run_prepare

    return run_prepare(cfg)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.prepare")
    check_command_line("src.prepare", "prepare")
    main()
