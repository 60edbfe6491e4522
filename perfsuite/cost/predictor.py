"""The cost model's pass times for a run's variants on this machine, from its fitted factors.

A run uses them twice: `predict_within` on relative bounds checks a predicted ratio against
the measured interval, and the report plots predicted against measured times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from perfsuite.cost.devices import DeviceSpec
from perfsuite.cost.fit import load_machine_fit
from perfsuite.cost.model import CostConfig, predict
from perfsuite.measure.batching import pack_lengths, padded_shapes
from perfsuite.measure.workload import ResolvedVariant
from perfsuite.variant import TierSettings, Variant


class Predictor:
    """Predicted pass times under one machine's fit (None everywhere when it has none)."""

    def __init__(
        self,
        baseline_root: Path,
        machine_key: str,
        settings: TierSettings,
        resolve: Callable[[Variant], ResolvedVariant],
    ) -> None:
        self.baseline_root = baseline_root
        self.machine_key = machine_key
        self.settings = settings
        self.resolve = resolve
        self._fitted: tuple[DeviceSpec | None, str] | None = None

    def fitted(self) -> tuple[DeviceSpec | None, str]:
        """This machine's fitted device, or None, and where it came from or why not (loaded once)."""
        if self._fitted is None:
            self._fitted = load_machine_fit(self.baseline_root, self.machine_key)
        return self._fitted

    def _row_lengths(self, variant: Variant) -> list[list[int]]:
        """Token lengths of the rows a pass runs, then of TTA's swapped rows (when there are any)."""
        encoded = self.resolve(variant).encoded
        return [[len(r.input_ids) for r in part] for part in (encoded.rows, encoded.swapped or [])]

    def batch_shapes(self, variant: Variant) -> list[tuple[int, int]]:
        """(batch, seq_len) of every batch a pass of the variant runs (TTA's swapped rows included)."""
        s = self.settings
        return [
            shape
            for lengths in self._row_lengths(variant)
            for shape in padded_shapes(lengths, s.batch_size, variant.padding, s.max_length, s.max_batch_tokens)
        ]

    def batch_packs(self, variant: Variant) -> list[tuple[int, ...]] | None:
        """Packed: each packed sequence's row lengths, in the order of `batch_shapes` (else None)."""
        if variant.padding != "packed":
            return None
        s = self.settings
        return [
            pack
            for lengths in self._row_lengths(variant)
            for pack in pack_lengths(lengths, s.batch_size, s.max_length, s.max_batch_tokens)
        ]

    def seconds(self, variant: Variant) -> float | None:
        device, _ = self.fitted()
        if device is None:
            return None
        spec = self.resolve(variant).spec
        cfg = CostConfig.for_model(spec, variant.dtype, variant.attention, self.settings.nf4_compute_dtype)
        return predict(cfg, device, self.batch_shapes(variant), self.batch_packs(variant)).total

    def seconds_of(self, variants: Sequence[Variant]) -> dict[str, float]:
        if self.fitted()[0] is None:
            return {}
        return {v.id: self.seconds(v) for v in variants}

    def ratio(self, variant: Variant, reference: Variant) -> tuple[float | None, str]:
        """Predicted variant / reference pass time, and the fit it rests on (or why there is none)."""
        device, source = self.fitted()
        if device is None:
            return None, f"prediction not checked: {source}"
        return self.seconds(variant) / self.seconds(reference), source
