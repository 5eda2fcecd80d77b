"""Bash completion of config keys and options for ``python -m src.<entry point> …``.

Hydra's own completion (``--shell-completion install=bash``) only knows ``python script.py`` and installed
executables: for ``python -m src.train`` it completes nothing, and for ``.venv/bin/python -m src.train`` it runs
``.venv/bin/python -sc query=bash``, a Python traceback. Every Hydra entry point of srsuite therefore calls
:func:`handle_shell_completion` first:

* ``python -m src.train --shell-completion install=bash`` (or ``-sc install=bash``) prints :data:`SCRIPT`, a bash
  function registered for ``python``, ``python3`` and ``.venv/bin/python`` that finds ``-m src.<entry>`` in the
  line and asks that entry point for candidates;
* ``… -sc query=bash`` (what the function runs) rewrites ``COMP_LINE`` into the ``python src/<entry>.py …`` form
  that Hydra's query parses, and Hydra answers as usual.

Enable it with ``eval "$(python -m src.train -sc install=bash)"`` (e.g. in ``~/.bashrc``).
"""

from __future__ import annotations

import os
import sys

ENTRY_POINTS = ("src.train", "src.evaluate", "src.upscale", "src.degrade", "src.interpolate", "src.report",
                "src.pulse", "src.export", "src.prepare")
SCRIPT = r"""_srsuite_complete()
{
    local words=($COMP_LINE) module="" i
    for ((i = 1; i < ${#words[@]} - 1; i++)); do
        if [ "${words[$i]}" == "-m" ]; then module="${words[$((i + 1))]}"; break; fi
    done
    case "$module" in
        ENTRY_POINTS) ;;
        *) return 0 ;;  # not an srsuite entry point: file names (-o default)
    esac
    local word="${COMP_WORDS[COMP_CWORD]}"
    [ "$COMP_POINT" -lt "${#COMP_LINE}" ] && return 0  # completes at the end of the line only
    local choices
    choices=$(COMP_LINE="$COMP_LINE" "${words[0]}" -m "$module" -sc query=bash 2>/dev/null)
    COMPREPLY=($(compgen -o nospace -o default -W "$choices" -- "$word"))
}
COMP_WORDBREAKS=${COMP_WORDBREAKS//=}
complete -o nospace -o default -F _srsuite_complete python python3 .venv/bin/python
""".replace("ENTRY_POINTS", "|".join(ENTRY_POINTS))


def _flag_value(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg in ("-sc", "--shell-completion") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--shell-completion="):
            return arg.split("=", 1)[1]
    return None


def query_line(line: str, module: str) -> str:
    """``<any python> [options] -m src.train <rest>`` -> ``python src/train.py <rest>`` (Hydra's query form)."""
    marker = f"-m {module}"
    head, sep, rest = line.partition(marker)
    if not sep:
        return line
    return f"python {module.replace('.', '/')}.py{rest}"


def handle_shell_completion(module: str, argv: list[str] | None = None) -> None:
    """Called before the Hydra main of ``module``: prints :data:`SCRIPT` and exits for ``-sc install=bash``;
    rewrites ``COMP_LINE`` for ``-sc query=bash``; does nothing otherwise."""
    argv = sys.argv[1:] if argv is None else argv
    value = _flag_value(argv)
    if value is None:
        return
    if value == "install=bash":
        print(SCRIPT)
        sys.exit(0)
    if value == "query=bash" and "COMP_LINE" in os.environ:
        os.environ["COMP_LINE"] = query_line(os.environ["COMP_LINE"], module)
