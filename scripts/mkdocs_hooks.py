"""MkDocs hook: the reference pages generated from the code (perfsuite.reference) join the
site as files of their own, so the CLI and matrix TOML pages cannot drift from --help and the
dataclasses."""

from __future__ import annotations

from mkdocs.structure.files import File, Files

GENERATED = {
    "reference/cli.md": "cli_page",
    "reference/matrix.md": "matrix_page",
}


def on_files(files: Files, config) -> Files:
    from perfsuite.reference import pages

    for uri, builder in GENERATED.items():
        files.append(File.generated(config, uri, content=getattr(pages, builder)()))
    return files
