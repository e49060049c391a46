"""Cells room: Seg maps -> cell table -> classification and scores, outlines and metrics."""
