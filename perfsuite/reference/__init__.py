"""The reference pages of the documentation, generated from the code so they cannot drift: the
command line from the argparse parsers, the matrix TOML from the dataclasses' field docstrings.
The docs build (scripts/mkdocs_hooks.py) writes them; a test fails on an option or field with
no help text."""
