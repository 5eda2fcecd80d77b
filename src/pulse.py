"""PULSE upsampling of LR images: ``python -m src.pulse input=<LR file|folder|glob> output=<dir>
generator=<name> generator.weights=<file> [scale=<s>]``.

See ``conf/pulse.yaml``; ``src.inference.pulse.run_pulse`` does the work (``src.methods.pulse``: the search).
"""

import hydra
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="pulse")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.inference.pulse import run_pulse

    run_pulse(cfg)


if __name__ == "__main__":
    from src.config.command_line import check_command_line
    from src.config.completion import handle_shell_completion

    handle_shell_completion("src.pulse")
    check_command_line("src.pulse", "pulse")
    main()
