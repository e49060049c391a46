"""Command line room: ``napari-deepliif`` and its sub-commands, thin shells over the core."""
