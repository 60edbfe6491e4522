"""Every Markdown table perfsuite writes renders as a table on GitHub (a real GFM parser reads it)."""

from __future__ import annotations

from perfsuite.compare.protocol import CompareSettings, Side, VariantComparison
from perfsuite.compare.report import HEADERS, to_markdown
from perfsuite.report import markdown
from perfsuite.stats.intervals import RatioEstimate
from perfsuite.variant import Variant
from tests.conftest import gfm_tables


def test_pipes_backslashes_and_newlines_stay_inside_their_cell():
    cells = ["a | b", "back\\slash", "two\nlines", "`code|x`"]
    (table,) = gfm_tables("\n".join(markdown.table(["h|1", "h2", "h3", "h4"], [cells])))
    assert table[0] == ["h|1", "h2", "h3", "h4"]
    assert table[1][:3] == ["a | b", "back\\slash", "two\nlines"]
    assert len(table[1]) == 4


def test_an_unescaped_pipe_in_a_header_is_what_breaks_a_table():
    """The fault the parser must see: `max |dp|` as written before, 12 header cells against 10."""
    broken = "| variant | max |dp| |\n|---|---|\n| x | 1 |\n"
    assert gfm_tables(broken) == []


def test_compare_md_header_delimiter_and_rows_agree():
    variant = Variant("tiny-llama3", "fp32", "sdpa", "sorted", "unit")
    result = VariantComparison(variant, "slower", estimate=RatioEstimate(1.2, 1.1, 1.3, 6, 0.95))
    result.blocks = [[([1.0], [1.2])] * 3] * 2
    result.predictions = {"max_abs_dp": 0.0, "argmax_agreement": 1.0, "log_loss_a": 1.0, "log_loss_b": 1.0}
    result.reason = "a | reason\nover two lines"
    sides = (Side("A", ("python",), {}, "this | checkout"), Side("B", ("python",), {}, "base"))
    (table,) = gfm_tables(to_markdown([result], sides, CompareSettings()))
    assert table[0] == list(HEADERS) and "max |dp|" in table[0]
    assert len(table[1]) == len(HEADERS) and table[1][0] == variant.id
    assert table[1][HEADERS.index("why")] == "a | reason\nover two lines"
