"""Built-in theme files, shipped as package data `mlxchat.themes` (see README.md)."""
