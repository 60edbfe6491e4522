"""Markdown for the generated reference pages: `cli.md` from the parsers, `matrix.md` from the
TierSettings and Bounds dataclasses."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from perfsuite.cli import build_parser
from perfsuite.matrix.tier import MODEL_FIELDS
from perfsuite.reference.fields import field_docs
from perfsuite.variant import Bounds, TierSettings

WIDTH = 100  # usage lines wrap here, whatever the terminal that builds the docs


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _commands(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """(full command, its parser, its one-line help) for every subcommand, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{prog} {name}", sub, helps.get(name, "")
                yield from _commands(sub, f"{prog} {name}")


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
            continue
        yield action


def missing_help() -> list[str]:
    """Options, arguments and commands that --help and the reference would show without a word."""
    root = build_parser()
    out = [f"perfsuite {a.option_strings or a.dest}" for a in _options(root) if not (a.help or "").strip()]
    for command, parser, help_text in _commands(root, "perfsuite"):
        if not help_text.strip():
            out.append(f"{command} (the command itself)")
        for action in _options(parser):
            if not (action.help or "").strip():
                out.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
    return out


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return parser.formatter_class(prog=parser.prog, width=WIDTH)


def _command_section(command: str, parser: argparse.ArgumentParser, help_text: str) -> list[str]:
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    lines = [f"## {command}", "", help_text or "", ""]
    if parser.description and parser.description.strip() != help_text.strip():
        lines += [parser.description.strip(), ""]
    lines += ["```text", formatter.format_help().strip(), "```", ""]
    rows = []
    for action in _options(parser):
        names = ", ".join(f"`{n}`" for n in action.option_strings) or f"`{action.dest}`"
        if action.metavar or (action.option_strings and action.nargs != 0):
            names += f" {action.metavar or action.dest.upper()}" if action.option_strings else ""
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            names += " {" + ",".join(str(c) for c in action.choices) + "}"
        text = _formatter(parser)._expand_help(action) if action.help else ""
        rows.append(f"| {_cell(names)} | {_cell(text)} |")
    if rows:
        lines += ["| option | what it does |", "|---|---|", *rows, ""]
    if parser.epilog and "example:" in parser.epilog:
        example = parser.epilog.split("example:", 1)[1].split("\n\n", 1)[0].strip()
        lines += ["Example:", "", "```bash", example, "```", ""]
    return lines


def cli_page() -> str:
    from perfsuite.cli.options import EXIT_CODES

    root = build_parser()
    lines = [
        "# Command line",
        "",
        "Generated from the argparse parsers when the docs are built: each section is what",
        "`perfsuite <command> --help` prints.",
        "",
        "```text",
        EXIT_CODES.strip(),
        "```",
        "",
    ]
    for command, parser, help_text in _commands(root, "perfsuite"):
        lines += _command_section(command, parser, help_text)
    return "\n".join(lines)


def _fields_table(cls: type) -> list[str]:
    rows = ["| field | type | default | what it sets |", "|---|---|---|---|"]
    for doc in field_docs(cls):
        rows.append(f"| `{doc.name}` | `{_cell(doc.type)}` | `{_cell(doc.default)}` | {_cell(doc.help)} |")
    return rows


def matrix_page() -> str:
    return "\n".join(
        [
            "# Matrix TOML",
            "",
            "Generated from the `TierSettings` and `Bounds` dataclasses (perfsuite/variant.py) when",
            "the docs are built. A matrix file holds these tables:",
            "",
            "- `[tier]`: how the tier measures (below).",
            "- `[axes]`: `model`, `dtype`, `attention` and `padding`, lists whose product is the matrix.",
            "- `[[exclude]]`: `match` (variant-id patterns, comma separated) and the `reason` shown as",
            "  their skip.",
            "- `[bounds]`: the tolerances (below); `[bounds.<field>_by_dtype]` tables set one per dtype,",
            "  and `[[overrides]]` entries (`match` plus any bound) set them per variant.",
            "- `[[relative]]`: `name`, `match`, `against` (the axes that differ), `min_ratio` and/or",
            "  `max_ratio`, `reason`, optionally `predict_within` - a pair timed interleaved in one run.",
            f"- `[[models]]`: your own models, fields {', '.join(f'`{f}`' for f in MODEL_FIELDS)}",
            "  ([how-to](../how-to/own-model.md)).",
            "",
            "An unknown field, or a field that was renamed, stops the run with one line naming it (exit 2).",
            "",
            "## [tier]",
            "",
            *_fields_table(TierSettings),
            "",
            "## [bounds]",
            "",
            *_fields_table(Bounds),
            "",
        ]
    )
