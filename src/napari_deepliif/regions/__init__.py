"""Region core: any region of any source scored by one path (plan, statistics, chunks, cells)."""
