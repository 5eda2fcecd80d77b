"""Super-resolve your own images: ``python -m src.upscale input=<file|folder|glob> output=<dir> model=<m>
model.weights=<file or ckpt>``.

See ``conf/upscale.yaml`` for the settings; ``src.inference.upscale.upscale`` does the work.
"""

import hydra
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="upscale")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.inference.upscale import upscale

    upscale(cfg)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.upscale")
    check_command_line("src.upscale", "upscale")
    main()
