"""Network weights: file layouts and loading (:mod:`.checkpoints`), architecture detection from a state dict
(:mod:`.detection`), building a network from a file (:mod:`.auto_model`), deployable formats (:mod:`.deploy`) and
network interpolation (:mod:`.interpolation`)."""
