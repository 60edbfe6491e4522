"""A perf session: prepare the workload once, run variants, judge them, keep the outcomes.

The pytest plugin and the CLI are both thin over this class.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from . import runner
from .baselines import DEFAULT_BASELINES, BaselineError, BaselineStore
from .checks import Verdict, check_prediction, check_relative, status_of
from .data.formatting import EncodedRow, PairFormatter
from .data.loader import LoadReport, load_arena_csv
from .data.sample import SAMPLE_PATH
from .data.tokenizer import TextTokenizer, load_local_hf_tokenizer, load_tiny_tokenizer
from .device import DeviceCaps, detect
from .environment import git_commit, package_versions
from .fileio import file_fingerprint
from .judge import StoredRecords, judge
from .matrix import WORKLOAD_FIELDS, Matrix, RelativeBound, TierSettings, Variant, skip_reason, variant_notes
from .metrics import LatencyStats, accuracy, compare_to_reference, log_loss
from .models.factory import adapter_for, checkpoint_env_var, checkpoint_for, tiny_checkpoint
from .models.specs import get_spec
from .outcomes import Outcome, PairOutcome
from .records import WORK_COUNTERS, Latency, MachineRecord, PortableRecord, Quality
from .runner import PreparedVariant, RunResult, Sampler, perf_counter_sampler
from .stats import ratio_interval


def _only_latency_failed(verdict: Verdict) -> bool:
    return verdict.status == "fail" and bool(verdict.failed) and all(c.kind == "latency" for c in verdict.failed)


def summarize(result: RunResult, settings: dict[str, Any], environment: dict[str, str]) -> dict[str, Any]:
    """JSON-able measurement of one run: work, latency, quality, memory."""
    lat = LatencyStats(tuple(result.latency_samples))
    labels = [y for y in result.labels if y is not None]
    scored = result.scored and len(labels) == len(result.labels) and result.nonfinite_rows == 0
    ll = log_loss(result.probs, labels) if scored else None
    acc = accuracy(result.probs, labels) if scored else None
    w = result.work
    return {
        "variant": result.variant.id,
        "settings": settings,
        "environment": environment,
        "work": {
            "rows": w.rows,
            "batches": w.batches,
            "real_tokens": w.real_tokens,
            "processed_tokens": w.processed_tokens,
            "max_seq_len": w.max_seq_len,
            "padding_overhead": round(w.padding_overhead, 4),
            "flops": result.flops,
            "weight_bytes": result.weight_bytes,
        },
        "latency": {
            "median_s": lat.median,
            "iqr_s": lat.iqr,
            "spread": lat.spread,
            "samples_s": list(result.latency_samples),
            "probe_samples_s": list(result.probe_samples or []),
            "tokens_per_s": w.real_tokens / lat.median if lat.median else math.nan,
            "rows_per_s": w.rows / lat.median if lat.median else math.nan,
        },
        "quality": {"log_loss": ll, "accuracy": acc, "nonfinite_rows": result.nonfinite_rows},
        "memory": {
            "weight_bytes": result.weight_bytes,
            "peak_bytes": result.peak_memory_bytes,
            "kind": result.memory_kind,
        },
        "load_seconds": result.load_seconds,
        "warmup_seconds": result.warmup_seconds,
    }


def _release_device_memory(caps: DeviceCaps) -> None:
    """After a failed variant (an OOM above all), free what it held so the rest can run."""
    import gc

    gc.collect()
    if caps.has_cuda:
        import torch

        torch.cuda.empty_cache()


class PerfSession:
    """Runs a matrix's variants on this machine against its stored baselines."""

    def __init__(
        self,
        matrix: Matrix,
        baseline_root: str | Path = DEFAULT_BASELINES,
        data_path: str | Path | None = None,
        caps: DeviceCaps | None = None,
        rebaseline: bool = False,
        cache_dir: Path | None = None,
        workload: dict[str, int] | None = None,
        strict: bool = False,
    ) -> None:
        """`workload` overrides the tier's rows / batch_size / max_length (a sweep without a new TOML);
        `strict` fails a variant on which nothing stored could be judged, instead of skipping it."""
        self.matrix = matrix
        unknown = set(workload or {}) - set(WORKLOAD_FIELDS)
        if unknown:
            raise ValueError(f"cannot override {sorted(unknown)}; only {', '.join(WORKLOAD_FIELDS)}")
        self.settings = replace(matrix.settings, **{k: v for k, v in (workload or {}).items() if v})
        self.caps = caps or detect(matrix.settings.device)
        self.store = BaselineStore(baseline_root, self.caps.machine_key(), matrix.settings.name)
        self.data_path = Path(data_path) if data_path else SAMPLE_PATH
        self.rebaseline = rebaseline
        self.strict = strict
        self.cache_dir = cache_dir
        self.outcomes: list[Outcome] = []
        self.pair_outcomes: list[PairOutcome] = []
        self.load_report: LoadReport | None = None
        self._rows: dict[str, tuple[TextTokenizer, list[EncodedRow], list[EncodedRow] | None]] = {}
        self._environment: dict[str, str] | None = None
        self._data_fingerprint: str | None = None
        self._fitted: tuple[Any, str] | None = None
        self._references: dict[str, Any] = {}

    # -- preparation -------------------------------------------------------------------
    @property
    def environment(self) -> dict[str, str]:
        if self._environment is None:
            env = package_versions()
            env["device"] = self.caps.name
            env["commit"] = git_commit()
            self._environment = env
        return self._environment

    def tokenizer_key(self, variant: Variant) -> str:
        """Which tokenizer a variant's rows were encoded with: the shipped tiny BPE or a checkpoint's."""
        spec = get_spec(variant.model)
        folder = None if spec.tiny else checkpoint_for(spec)
        return str(folder) if folder else "tiny-bpe"

    def run_settings(self, variant: Variant | None = None) -> dict[str, Any]:
        s = self.settings
        if self._data_fingerprint is None:  # hashed once, not per variant
            self._data_fingerprint = file_fingerprint(self.data_path)
        return {
            "data": self._data_fingerprint,
            "rows": s.rows,
            "batch_size": s.batch_size,
            "max_length": s.max_length,
            "padding_side": s.padding_side,
            "tta": s.tta,
            "tier": s.name,
            **({"tokenizer": self.tokenizer_key(variant)} if variant is not None else {}),
        }

    def checkpoint(self, variant: Variant, pad_id: int) -> Path | None:
        """Tiny: the seeded miniature; full-size: the user's local folder, or None (shape-only)."""
        spec = get_spec(variant.model)
        return tiny_checkpoint(spec, pad_id, self.cache_dir) if spec.tiny else checkpoint_for(spec)

    def workload(self, variant: Variant) -> tuple[TextTokenizer, list[EncodedRow], list[EncodedRow] | None]:
        """Tokenised, truncated rows for the variant's tokenizer (prepared once per tokenizer).

        A full-size model with a local checkpoint uses that folder's tokenizer; everything
        else uses the shipped tiny BPE (its ids fit every vocabulary in the registry). With
        `tta` the A/B-swapped rows come third, else None.
        """
        key = self.tokenizer_key(variant)
        if key not in self._rows:
            tokenizer = load_tiny_tokenizer() if key == "tiny-bpe" else load_local_hf_tokenizer(Path(key))
            rows, report = load_arena_csv(self.data_path, limit=self.settings.rows)
            self.load_report = report
            if not rows:
                raise ValueError(f"{self.data_path}: no usable rows\n{report.summary()}")
            formatter = PairFormatter(tokenizer, self.settings.max_length)
            swapped = formatter.encode_all([r.swapped() for r in rows]) if self.settings.tta else None
            self._rows[key] = (tokenizer, formatter.encode_all(rows), swapped)
        return self._rows[key]

    def skip_reason(self, variant: Variant) -> str | None:
        return skip_reason(variant, self.settings, self.caps) or self.matrix.excluded(variant)

    def skip_verdict(self, variant: Variant) -> Verdict:
        return Verdict("skip", reason=self.skip_reason(variant) or "")

    # -- running -----------------------------------------------------------------------
    def run(self, variant: Variant, sampler: Sampler = perf_counter_sampler) -> Outcome:
        if self.skip_reason(variant):
            outcome = Outcome(variant, self.skip_verdict(variant))
            self.outcomes.append(outcome)
            return outcome
        notes: list[str] = []
        try:
            _, rows, swapped = self.workload(variant)
            result = self.measure(variant, rows, swapped, sampler)
            outcome = self._judge(variant, self._measurement(variant, result))
            if self.settings.confirm_latency and _only_latency_failed(outcome.verdict):
                # A regression persists; a burst of load on the machine does not. Time the
                # variant once more (fresh process state is not needed: the load is outside).
                first = outcome.measurement["latency"]["median_s"]
                result = self.measure(variant, rows, swapped, perf_counter_sampler)
                outcome = self._judge(variant, self._measurement(variant, result))
                state = "confirmed" if outcome.verdict.status == "fail" else "not confirmed: counted as transient load"
                notes.append(f"latency failed at first (median {first * 1000:.1f} ms), re-measured: {state}")
        except Exception as exc:  # one broken variant (OOM, kernel error) must not end the matrix
            _release_device_memory(self.caps)
            outcome = Outcome(variant, Verdict("fail", reason=f"run failed: {type(exc).__name__}: {exc}"))
            self.outcomes.append(outcome)
            return outcome
        outcome.notes = [*variant_notes(variant, self.caps), *notes]
        ref_error = (outcome.measurement or {}).get("quality", {}).get("reference_error")
        if ref_error:
            outcome.notes.append(f"no in-run quality reference ({ref_error})")
        if result.adapter is not None:
            outcome.notes.append(f"LoRA adapter {result.adapter} (unmerged)")
        if not result.scored:
            env_var = checkpoint_env_var(get_spec(variant.model))
            outcome.notes.append(f"shape-only weights: log-loss needs a real checkpoint (set {env_var})")
        self.outcomes.append(outcome)
        return outcome

    def _measurement(self, variant: Variant, result: RunResult) -> dict[str, Any]:
        """The run's JSON-able measurement, with the comparison to the in-run quality reference."""
        measurement = summarize(result, self.run_settings(variant), self.environment)
        if result.scored:
            try:
                reference = self.reference_probs(variant.model)
            except Exception as exc:  # e.g. an fp32 reference that does not fit the card: say so, go on
                _release_device_memory(self.caps)
                measurement["quality"]["reference_error"] = f"{type(exc).__name__}: {exc}"
                return measurement
            labels = result.labels if all(y is not None for y in result.labels) else None
            measurement["quality"]["reference"] = compare_to_reference(result.probs, reference, labels)
        return measurement

    def measure(
        self,
        variant: Variant,
        rows: list[EncodedRow],
        swapped: list[EncodedRow] | None = None,
        sampler: Sampler = perf_counter_sampler,
    ) -> RunResult:
        """Run `rows` (a whole workload or a shard of it) with the variant's checkpoint and adapter."""
        pad_id, checkpoint, adapter = self._weights(variant)
        return runner.run_variant(variant, self.settings, rows, pad_id, checkpoint, sampler, swapped, adapter)

    def prepare(self, variant: Variant, settings: TierSettings | None = None) -> PreparedVariant:
        """The variant's whole workload, loaded and batched (under `settings`, default the tier's)."""
        _, rows, swapped = self.workload(variant)
        pad_id, checkpoint, adapter = self._weights(variant)
        return runner.prepare_variant(variant, settings or self.settings, rows, pad_id, checkpoint, swapped, adapter)

    def _weights(self, variant: Variant) -> tuple[int, Path | None, Path | None]:
        """Pad id, checkpoint folder and LoRA adapter a variant loads."""
        pad_id = self.workload(variant)[0].pad_id
        return pad_id, self.checkpoint(variant, pad_id), adapter_for(get_spec(variant.model))

    def length_summary(self) -> list[str]:
        """Per tokenizer used: the token-length distribution of the rows and how many were truncated."""
        from .data.lengths import TokenLengths

        lines = []
        for key, (_, rows, _) in self._rows.items():
            kept = tuple(len(r.input_ids) for r in rows)
            found = TokenLengths(
                str(self.data_path),
                self.settings.max_length,
                kept,
                tuple(k + r.truncated_tokens for k, r in zip(kept, rows, strict=True)),
            )
            q = found.quantiles()
            lines.append(
                f"tokens ({key}): {len(rows)} rows, median {q['median']}, p90 {q['p90']}, max {q['max']}; "
                f"{found.truncated_rows} rows truncated to max_length {self.settings.max_length}"
            )
        return lines

    def reference_probs(self, model: str):
        """The in-run quality reference for a model: fp32 (the tier's reference_dtype), eager,
        one row per batch, no padding.

        Run once per model and session (MLPerf's reference-accuracy idea): every variant of
        the model is compared with it row by row, so dtype, attention, padding and batching
        effects show without any stored baseline.
        """
        if model not in self._references:
            ref = Variant(model, self.settings.reference_dtype, "eager", "dynamic", self.settings.name)
            prepared = self.prepare(ref, replace(self.settings, batch_size=1))
            probs, bad = runner.score_once(prepared, len(self.workload(ref)[1]))
            if bad:
                raise ValueError(f"{model}: the {ref.dtype} eager reference itself has {bad} non-finite rows")
            self._references[model] = probs
        return self._references[model]

    # -- relative bounds -----------------------------------------------------------------
    def relative_skip_reason(self, bound: RelativeBound) -> str | None:
        for variant in (bound.variant, bound.reference):
            reason = self.skip_reason(variant)
            if reason:
                return f"{variant.id} does not run here: {reason}"
        return None

    def run_relative(self, bound: RelativeBound) -> PairOutcome:
        """Time the pair interleaved and check the median ratio's interval against the band."""
        reason = self.relative_skip_reason(bound)
        if reason:
            outcome = PairOutcome(bound, Verdict("skip", reason=reason))
        else:
            try:
                a, b = self.prepare(bound.variant), self.prepare(bound.reference)
                s = self.settings
                samples = runner.time_interleaved(a, b, s.relative_rounds, s.warmup_rounds)
                del a, b
                estimate = ratio_interval(*samples, confidence=s.relative_confidence)
            except Exception as exc:
                _release_device_memory(self.caps)
                outcome = PairOutcome(bound, Verdict("fail", reason=f"run failed: {type(exc).__name__}: {exc}"))
            else:
                checks, notes, predicted = [check_relative(bound, estimate)], [], None
                if bound.predict_within is not None:
                    predicted, source = self._predicted_ratio(bound)
                    if predicted is None:
                        notes.append(source)
                    else:
                        checks.append(check_prediction(bound, estimate, predicted, source))
                verdict = Verdict(status_of(checks), checks)
                if self.data_path.resolve() != SAMPLE_PATH.resolve():
                    # The bands describe the bundled sample's length profile (how much padding
                    # there is to save); on other data the ratio is shown, not judged.
                    verdict = Verdict(
                        "skip",
                        checks,
                        f"measured {estimate.describe()}; bands are set for the "
                        f"bundled sample, not {self.data_path.name}",
                    )
                outcome = PairOutcome(bound, verdict, estimate, samples, notes, predicted)
        self.pair_outcomes.append(outcome)
        return outcome

    def batch_shapes(self, variant: Variant) -> list[tuple[int, int]]:
        """(batch, seq_len) of every batch a pass of the variant runs (TTA's swapped rows included)."""
        from .batching import padded_shapes

        _, rows, swapped = self.workload(variant)
        s = self.settings
        return [
            shape
            for part in (rows, swapped or [])
            for shape in padded_shapes([len(r.input_ids) for r in part], s.batch_size, variant.padding, s.max_length)
        ]

    def fitted_device(self):
        """This machine's fitted cost model (devices.DeviceSpec) or None, and where it came from or why not."""
        from .costfit import machine_fit

        if self._fitted is None:
            self._fitted = machine_fit(self.store.root, self.store.machine_key)
        return self._fitted

    def predicted_seconds(self, variant: Variant) -> float | None:
        """The cost model's pass time for the variant on this machine (None without a fit)."""
        from .costmodel import CostConfig, predict

        device, _ = self.fitted_device()
        if device is None:
            return None
        cfg = CostConfig.for_model(
            get_spec(variant.model), variant.dtype, variant.attention, self.settings.nf4_compute_dtype
        )
        return predict(cfg, device, self.batch_shapes(variant)).total

    def predictions(self) -> dict[str, float]:
        """Predicted pass time of every variant measured so far (empty without a fit)."""
        if self.fitted_device()[0] is None:
            return {}
        return {o.variant.id: self.predicted_seconds(o.variant) for o in self.outcomes if o.measurement is not None}

    def _predicted_ratio(self, bound: RelativeBound) -> tuple[float | None, str]:
        device, source = self.fitted_device()
        if device is None:
            return None, f"prediction not checked: {source}"
        a, b = self.predicted_seconds(bound.variant), self.predicted_seconds(bound.reference)
        return a / b, source

    def stored(self, variant: Variant) -> StoredRecords:
        """The variant's portable record and this machine's, or the error that makes one unusable."""
        paths = (str(self.store.portable_path(variant.id)), str(self.store.path_for(variant.id)))
        try:
            portable, machine = self.store.load_portable(variant.id), self.store.load_machine(variant.id)
        except BaselineError as exc:
            return StoredRecords(None, None, *paths, self.store.machine_key, exc)
        return StoredRecords(portable, machine, *paths, self.store.machine_key)

    def _judge(self, variant: Variant, measurement: dict[str, Any]) -> Outcome:
        stored = self.stored(variant)
        if self.rebaseline:
            guard = judge(measurement, replace(stored, portable=None, machine=None, error=None), variant.bounds)
            if guard.failed:  # never store a baseline of a broken run
                return Outcome(variant, guard, measurement, stored.machine)
            portable, machine = self.records_for(variant, measurement)
            self.store.save(portable, machine)
            recorded = Verdict("recorded", guard.checks, baseline_path=stored.machine_path, coverage=guard.coverage)
            return Outcome(variant, recorded, measurement, stored.machine)
        return Outcome(variant, judge(measurement, stored, variant.bounds, self.settings, self.strict), measurement)

    def records_for(self, variant: Variant, measurement: dict[str, Any]) -> tuple[PortableRecord, MachineRecord]:
        """A measurement as the tier's portable record and this machine's record."""
        q = measurement["quality"]
        quality = Quality(q["log_loss"], q["accuracy"]) if q["log_loss"] is not None else None
        portable_quality = self.settings.portable_quality(variant.dtype)
        tolerances = asdict(variant.bounds)
        settings, env = measurement["settings"], self.environment
        lat = measurement["latency"]
        probes = lat.get("probe_samples_s") or []
        portable = PortableRecord(
            variant.id,
            self.settings.name,
            {k: measurement["work"][k] for k in WORK_COUNTERS},
            quality if portable_quality else None,
            settings,
            {k: v for k, v in env.items() if k != "device"},
            tolerances,
            recorded_on=self.store.machine_key,
        )
        machine = MachineRecord(
            variant.id,
            self.settings.name,
            self.store.machine_key,
            Latency.from_samples(lat["samples_s"], statistics.median(probes) if probes else None),
            measurement["memory"],
            None if portable_quality else quality,
            settings,
            env,
            tolerances,
        )
        return portable, machine
