"""Models room: the model index, downloads, local folders, release-layout loading."""
