"""The error of a config that cannot run (printed as one ``error:`` line by the entry points)."""


class ConfigError(ValueError):
    """A composed config that cannot run; the message names the key and what was expected."""
