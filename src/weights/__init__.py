"""Network weights. The ground floor (files and networks, no methods): reading files (:mod:`.files`), containers
(:mod:`.containers`), official key layouts (:mod:`.layouts`), the loading API (:mod:`.checkpoints`), the table of
networks (:mod:`.arch_table`), architecture detection (:mod:`.detection`), writing for other programs
(:mod:`.writing`) and ONNX/TorchScript (:mod:`.deploy`). Above the methods: ``model=auto`` configs
(:mod:`.auto_model`), network interpolation (:mod:`.interpolation`) and the export app (:mod:`.export`)."""
