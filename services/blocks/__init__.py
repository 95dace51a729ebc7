"""Blocks: the region tree, 1+N+1 block staffing, boundaries, buildings, households and visits."""
