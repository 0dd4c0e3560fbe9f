"""mlxchat: a terminal chat for local language models on MLX."""

__version__ = "0.1.0"
