"""`python -m mlxchat` runs the CLI."""

from mlxchat.cli import main

main()
