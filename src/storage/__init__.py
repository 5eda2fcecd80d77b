"""Writing results safely: atomic files (:mod:`.atomic`) and unique output folders (:mod:`.output_folders`)."""
