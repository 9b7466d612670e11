"""tinyprune: neural-network compression in pure NumPy, following the lecture
"Model Compression and Pruning Techniques"."""

__version__ = "0.1.0"
