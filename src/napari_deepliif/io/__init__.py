"""Files room: reading images, writing images, the one score format and the cell exports."""
