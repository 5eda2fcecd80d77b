"""Configuration: typed schemas of the entry points (:mod:`.schema`), validation of composed configs and the
resolvers ``conf/`` uses (:mod:`.validation`), types and ranges of numeric knobs (:mod:`.ranges`), the config
error (:mod:`.errors`), command-line checks (:mod:`.command_line`) and shell completion (:mod:`.completion`).
Importing the package makes ``conf/`` composable (schemas registered, resolvers known)."""

from src.config import validation  # noqa: F401  (registers the OmegaConf resolvers of conf/)
from src.config.schema import register_schemas

register_schemas()  # before any composition: conf/<entry>.yaml starts its defaults with <entry>_schema
