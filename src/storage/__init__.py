"""Writing results safely: atomic files, folders and moves (:mod:`.atomic`)."""
