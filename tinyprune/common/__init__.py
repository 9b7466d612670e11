"""Helpers shared by the technique packages (k-means, bit packing)."""
