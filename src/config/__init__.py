"""Configuration: validation of composed configs (:mod:`.validation`) and shell completion (:mod:`.completion`)."""
