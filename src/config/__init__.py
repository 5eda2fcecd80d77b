"""Configuration: validation of composed configs (:mod:`.validation`) and shell completion (:mod:`.completion`)."""

from src.config.schema import register_schemas

register_schemas()  # before any composition: conf/<entry>.yaml starts its defaults with <entry>_schema
