"""Data sets and pretrained files by name: ``python -m src.download names=[div2k,benchmarks,…]``.

``python -m src.download list`` (or ``--help``) prints every entry with its size, licence, checksum kind and
destination. See ``conf/download.yaml``; ``src.zoo`` does the work.
"""

import sys

import hydra
from omegaconf import DictConfig

from src.config.validation import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="download")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from src.zoo.cli import run

    run(cfg)


def _plain_arguments() -> None:
    """``list`` alone means ``list=true``; ``-h``/``--help`` prints the usage and the entries."""
    sys.argv = [sys.argv[0]] + ["list=true" if a == "list" else a for a in sys.argv[1:]]
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        from src.zoo.cli import print_help

        print_help()
        sys.exit(0)


if __name__ == "__main__":
    from src.config.command_line import check_command_line

    _plain_arguments()
    check_command_line("src.download", "download")
    main()
