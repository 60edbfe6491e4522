"""budget's whole run (#37): the two ways of using two cards, the fixed costs named term by
term, and the public solutions' recipes as presets (cost model only: no torch run)."""

from __future__ import annotations

import pytest

from perfsuite.cli import main
from perfsuite.cost.budget import Strategy, cheapest_fix, project
from perfsuite.cost.devices import get_device
from perfsuite.cost.explain import ExplainError, Setup
from perfsuite.cost.fixed import FixedCosts, Term
from perfsuite.cost.model import weight_bytes
from perfsuite.cost.recipes import Recipe, load_recipe, presets, recipe_model
from perfsuite.cost.uncertainty import Interval

LENGTHS = [300, 1800, 900, 2500, 650, 1200, 80, 1500] * 4
T4 = get_device("t4")


def test_a_layer_split_takes_one_cards_time_and_holds_half_the_weights_on_each():
    setup = Setup("llama3-8b", "fp16", "sdpa")
    one = project(setup, T4, LENGTHS, 1000, 1, False)
    split = project(setup, T4, LENGTHS, 1000, 2, False, Strategy.LAYER_SPLIT)
    parallel = project(setup, T4, LENGTHS, 1000, 2, False)
    assert split.scoring_s == pytest.approx(one.scoring_s)  # a batch visits the cards in turn
    assert parallel.scoring_s == pytest.approx(one.scoring_s / 2, rel=0.05)
    assert 0 < split.handoff_s < 0.01 * split.scoring_s  # hidden states over PCIe: small, and said
    half = weight_bytes(setup.config()) / 2
    assert split.peak_bytes == pytest.approx(parallel.peak_bytes - half)
    assert not parallel.fits_memory and split.fits_memory  # fp16 8B: 16 GB of weights, 8 GB a card


def test_fixed_costs_are_paid_once_and_loading_once_per_copy():
    setup = Setup("llama3-8b", "nf4", "sdpa")
    fixed = FixedCosts(install_s=200, import_s=990, load_s=85, source="test")
    bare = project(setup, T4, LENGTHS, 1000, 2, False)
    parallel = project(setup, T4, LENGTHS, 1000, 2, False, fixed=fixed)
    split = project(setup, T4, LENGTHS, 1000, 2, False, Strategy.LAYER_SPLIT, fixed)
    assert parallel.seconds - bare.seconds == pytest.approx(200 + 990 + 2 * 85)
    assert split.seconds - split.scoring_s - split.handoff_s == pytest.approx(200 + 990 + 85)


def test_the_cost_models_interval_widens_scoring_only():
    fixed = FixedCosts(install_s=1000, source="t")
    p = project(Setup("llama3-8b", "nf4", "sdpa"), T4, LENGTHS, 1000, 2, False, fixed=fixed)
    low, high = p.around(Interval(0.5, 2.0, "test"))
    assert low == pytest.approx(1000 + 0.5 * p.scoring_s) and high == pytest.approx(1000 + 2.0 * p.scoring_s)


def test_the_other_strategy_is_a_single_change_on_two_cards_only():
    base = project(Setup("llama3-8b", "fp16", "sdpa"), T4, LENGTHS, 1000, 2, False)
    labels = {label: p for label, p, _ in cheapest_fix(base, T4, LENGTHS)}
    assert labels["strategy layer_split"].fits_memory and "strategy data_parallel" not in labels
    alone = project(Setup("llama3-8b", "fp16", "sdpa"), T4, LENGTHS, 1000, 1, False)
    assert not any(label.startswith("strategy") for label, _, _ in cheapest_fix(alone, T4, LENGTHS))


def test_the_public_recipes_are_presets_that_say_what_they_set():
    assert presets() == ["3rd-place", "4th-place", "fp16-layer-split"]
    fourth = load_recipe("4th-place")
    assert (fourth.dtype, fourth.max_length, fourth.batch_size, fourth.tta) == ("int8", 3072, 2, True)
    assert fourth.strategy is Strategy.DATA_PARALLEL and fourth.softcapping == "off"
    fixed = fourth.fixed(None, None, None)
    assert (fixed.install_s, fixed.import_s, fixed.load_s, fixed.quantise_s) == (200, 990, 85, 0)
    assert fixed.source == fourth.fixed_costs_source and fixed.quantise_in_load  # the log's load includes it
    assert load_recipe("fp16-layer-split").strategy is Strategy.LAYER_SPLIT
    third = load_recipe("3rd-place").fixed(None, None, None)  # its write-up gives none
    assert third.total(2) == 0 and third.source == FixedCosts().source


def test_a_flag_beside_a_recipe_wins_and_the_source_says_so():
    fixed = load_recipe("4th-place").fixed(None, 30.0, None)
    assert (fixed.install_s, fixed.import_s, fixed.load_s) == (200, 30.0, 85)
    assert fixed.where(Term.IMPORT) == "--import-s" and fixed.where(Term.LOAD).startswith("a public two-copy")
    assert fixed.source.startswith("a public two-copy") and "; --import-s" in fixed.source


def test_softcapping_off_runs_the_models_nocap_twin_and_says_when_there_is_none():
    off = Recipe("r", "d", softcapping="off")
    assert recipe_model("gemma2-9b", off)[0] == "gemma2-9b-nocap"
    model, note = recipe_model("llama3-8b", off)
    assert model == "llama3-8b" and "has no softcapping" in note
    assert recipe_model("gemma2-9b", Recipe("r", "d")) == ("gemma2-9b", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('description = "x"\nmax_lenght = 3\n', "unknown field(s) max_lenght"),
        ('description = "x"\ndtype = "int4"\n', "field dtype = 'int4': must be one of"),
        ('description = "x"\nbatch_size = 0\n', "field batch_size = 0: must be a whole number"),
        ('description = "x"\nload_s = -5\n', "field load_s = -5: must be a number of seconds"),
        ('description = "x"\nstrategy = "pipeline"\n', "field strategy = 'pipeline'"),
        ("dtype = 'nf4'\n", "field description: required"),
        ("description = \n", "cannot read it as TOML"),
    ],
)
def test_a_bad_recipe_file_is_one_line_naming_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ExplainError, match=r"mine\.toml") as caught:
        load_recipe(str(path))
    assert message in str(caught.value)


def test_cli_budget_with_a_recipe_names_it_each_term_and_the_twin(capsys):
    code = main(["budget", "gemma2-9b", "--recipe", "4th-place", "--max-length", "2048", "--baselines", "baselines"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert "recipe 4th-place: 4th place: int8" in out and "gemma2-9b-nocap: gemma2-9b with its softcapping off" in out
    assert "max_length 2048, batch 2" in out  # the flag beside the recipe wins; the recipe's batch stays
    assert "one copy per card, 2 copies" in out and "x2 (TTA)" in out
    for term in ("install", "import", "load and quantise x2", "score", "total"):
        assert term in out
    assert "fixed costs: a public two-copy 8-bit notebook's log" in out


def test_cli_budget_with_an_unknown_recipe_is_exit_2_naming_the_presets(capsys):
    assert main(["budget", "llama3-8b", "--recipe", "5th-place"]) == 2
    err = capsys.readouterr().err
    assert "--recipe '5th-place': no such preset (3rd-place, 4th-place, fp16-layer-split) or file" in err
