"""Training runs: the ``src.train`` flow (:mod:`.run`), its Lightning callbacks and its loggers."""
