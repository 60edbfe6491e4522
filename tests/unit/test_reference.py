"""The generated reference pages (docs: command line, matrix TOML) and the README's links: an
option, command or field without help text fails here, before the docs build shows a blank."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from perfsuite.cli import build_parser
from perfsuite.reference import pages
from perfsuite.reference.fields import field_docs, undocumented
from perfsuite.variant import Bounds, TierSettings

ROOT = Path(__file__).parents[2]


def test_every_command_option_and_argument_has_help_text():
    assert pages.missing_help() == []


def test_an_option_added_without_help_is_named(monkeypatch):
    def parser_with_a_silent_option() -> argparse.ArgumentParser:
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices["run"].add_argument("--silent")
        return parser

    monkeypatch.setattr(pages, "build_parser", parser_with_a_silent_option)
    assert pages.missing_help() == ["perfsuite run --silent"]


def test_every_tier_and_bounds_field_has_a_docstring():
    assert undocumented(TierSettings) == [] and undocumented(Bounds) == []


@dataclass(frozen=True)
class _Settings:
    documented: int = 1
    """Says what it sets."""
    bare: str = "x"  # a comment is not a docstring


def test_a_field_without_a_docstring_is_named_and_its_default_spelled_as_toml():
    docs = {d.name: d for d in field_docs(_Settings)}
    assert docs["documented"].help == "Says what it sets." and docs["documented"].default == "1"
    assert docs["bare"].default == '"x"' and undocumented(_Settings) == ["_Settings.bare"]


def test_the_cli_page_has_a_section_per_command_and_every_option_in_it():
    page = pages.cli_page()
    for command, parser, _ in pages._commands(build_parser(), "perfsuite"):
        section = page.split(f"## {command}\n", 1)[1].split("\n## ", 1)[0]
        for action in pages._options(parser):
            for flag in action.option_strings:
                assert f"`{flag}`" in section, (command, flag)
    assert "## perfsuite history changes" in page and "130 interrupted" in page


def test_the_matrix_page_lists_each_field_with_its_type_and_default():
    page = pages.matrix_page()
    assert "| `latency_alpha` | `float` | `0.05` |" in page
    assert "| `latency_tolerance` | `float` | `0.25` |" in page
    assert "| `rows` | `int` | `required` |" in page
    assert "| `max_batch_tokens` | `int \\| None` | `unset` |" in page


def test_the_readme_fits_a_screen_and_every_link_in_it_resolves():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert links
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert missing == []
