"""Tests of the translate screen (a package, so that its conftest and helpers never clash
with other test folders' modules)."""
