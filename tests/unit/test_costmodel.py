"""Analytic FLOPs match torch's FlopCounterMode on eager attention, and scale as they should."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from perfsuite.costmodel import forward_flops, linear_params_per_layer
from perfsuite.models.factory import shape_only_model
from perfsuite.models.specs import get_spec


@pytest.mark.parametrize("name", ["tiny-llama3", "tiny-gemma2", "tiny-mistral"])
def test_matches_flop_counter_on_eager(name):
    spec = get_spec(name)
    model = shape_only_model(spec, "fp32", "eager", 0, device="cpu")
    ids = torch.randint(1, 100, (2, 40))
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert forward_flops(spec, [(2, 40)]) == counter.get_total_flops()


def test_full_size_linear_work_ratio_gemma2_vs_llama3():
    """REFERENCE: non-embedding matmul parameters 8.32B vs 6.98B (1.19x)."""
    g, l3 = get_spec("gemma2-9b"), get_spec("llama3-8b")
    gemma = linear_params_per_layer(g) * g.config["num_hidden_layers"]
    llama = linear_params_per_layer(l3) * l3.config["num_hidden_layers"]
    assert gemma / 1e9 == pytest.approx(8.32, abs=0.01) and llama / 1e9 == pytest.approx(6.98, abs=0.01)


def test_padding_is_work_and_attention_is_quadratic():
    spec = get_spec("tiny-llama3")
    assert forward_flops(spec, [(4, 100)]) == 4 * forward_flops(spec, [(1, 100)])
    linear_only = forward_flops(spec, [(1, 2)]) / 2
    assert forward_flops(spec, [(1, 200)]) - 200 * linear_only > 3.9 * (
        forward_flops(spec, [(1, 100)]) - 100 * linear_only
    )
