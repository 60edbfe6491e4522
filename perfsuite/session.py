"""A perf session: prepare the workload once, run variants, judge them, keep the outcomes.
The pytest plugin and the CLI are both thin over this class."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from perfsuite.cost.predictor import Predictor
from perfsuite.data.formatting import EncodedRow
from perfsuite.data.loader import LoadReport
from perfsuite.data.sample import SAMPLE_PATH
from perfsuite.data.tokenizer import TextTokenizer
from perfsuite.device.emulation import emulated
from perfsuite.device.environment import git_commit, package_versions
from perfsuite.device.machine import DeviceCaps, detect
from perfsuite.device.probe import SupportProbe
from perfsuite.device.support import packing_reason, semantic_reason, skip_reason
from perfsuite.fileio import weights_identity
from perfsuite.judge.checks import BASELINE_FREE, Status, Verdict
from perfsuite.judge.latency import Budget
from perfsuite.judge.latency_run import RunDecisions, decide_run, fresh_timings, latency_candidates
from perfsuite.judge.recording import portable_state, records_for
from perfsuite.judge.verdict import PairEvidence, StoredRecords, judge, judge_pair, latency_coverage
from perfsuite.matrix.options import overrides_of, run_settings
from perfsuite.matrix.tier import Matrix, RelativeBound, variant_notes
from perfsuite.measure import runner
from perfsuite.measure.allocator import warm_allocator
from perfsuite.measure.fresh import FreshError, FreshRequest, Measure, measure_fresh, process_medians, spread_note
from perfsuite.measure.measurement import Measurement
from perfsuite.measure.runner import PreparedVariant, RunResult, Sampler, perf_counter_sampler
from perfsuite.measure.workload import ResolvedVariant, Workload
from perfsuite.models.declared import miniature_notes, miniature_summary
from perfsuite.models.factory import checkpoint_env_var, real_weights_notes
from perfsuite.report.outcomes import Outcome, PairOutcome, reference_notes
from perfsuite.report.run_report import RunReport
from perfsuite.stats.intervals import ratio_interval
from perfsuite.stats.metrics import compare_to_reference
from perfsuite.store.baselines import DEFAULT_BASELINES, BaselineError, BaselineStore
from perfsuite.variant import TierSettings, Variant


def _release_device_memory(caps: DeviceCaps) -> None:
    """Free what the previous variant held (after an OOM above all)."""
    from perfsuite.device.torch_ops import release_memory

    release_memory(caps.device_type)


@dataclass(frozen=True)
class SessionConfig:
    """How a session runs its matrix (what the CLI's and the plugin's options say), apart from
    the session that acts on it.

    `workload` overrides the tier's rows / batch_size / max_length (a sweep without a new TOML);
    `strict` fails a variant on which nothing stored could be judged, instead of skipping it;
    `rewrite_portable`: a rebaseline rewrites portable records whose values it confirms too (by
    default only changed and new ones are written); `processes`: a rebaseline times each
    recorded variant again in this many fresh processes and keeps their medians (the variant's
    own between-process noise, which the latency decision weighs)."""

    baselines: str | Path = DEFAULT_BASELINES
    data: str | Path | None = None
    rebaseline: bool = False
    cache_dir: Path | None = None
    workload: Mapping[str, int | None] = field(default_factory=dict)
    strict: bool = False
    rewrite_portable: bool = False
    processes: int = 0


class PerfSession:
    """Runs a matrix's variants on this machine against its stored baselines."""

    def __init__(self, matrix: Matrix, config: SessionConfig | None = None, caps: DeviceCaps | None = None) -> None:
        """`caps`: the device, detected when not given (the tests' seam for the machine)."""
        config = config or SessionConfig()
        baseline_root, data_path, rebaseline = config.baselines, config.data, config.rebaseline
        cache_dir = config.cache_dir
        warm_allocator()  # whatever this process times first, it times in a warm process's allocator
        self.matrix = matrix
        self.settings = run_settings(matrix, config.workload or {})
        overrides = overrides_of(config.workload or {})
        self.caps = emulated(caps or detect(matrix.settings.device), matrix.settings.emulate)
        self.store = BaselineStore(baseline_root, self.caps.machine_key(), matrix.settings.name)
        if rebaseline:
            self.store.begin()  # this machine's lock: a second rebaseline of the key refuses now
        self.finish_note: list[str] = []
        self.data_path = Path(data_path) if data_path else SAMPLE_PATH
        self.rebaseline = rebaseline
        self.rewrite_portable = config.rewrite_portable
        self.portable_states: dict[str, str] = {}  # variant id -> new / confirmed / changed (...), in a rebaseline
        self.strict = config.strict
        self.processes = config.processes
        source = str(Path(matrix.source).resolve())
        self.fresh = FreshRequest(source, str(self.store.root), str(data_path) if data_path else None, overrides)
        self.measure_fresh: Measure = measure_fresh  # the seam: tests stub the fresh processes
        self.data = Workload(self.data_path, self.settings, cache_dir, matrix.spec)
        self.probe = SupportProbe(cache_dir)  # what the installed libraries accept, asked once
        self.predictor = Predictor(self.store.root, self.store.machine_key, self.settings, self.resolve)
        self.outcomes: list[Outcome] = []
        self.pair_outcomes: list[PairOutcome] = []
        self._environment: dict[str, str] | None = None
        self._references: dict[str, Any] = {}
        self._reference_lm: dict[str, float] = {}  # real weights: the reference's next-token log-loss
        self._timing_cost: dict[str, float] = {}  # variant -> seconds its timing took here (a fresh one's estimate)
        self.latency: RunDecisions | None = None  # the run's latency decisions (decide_latency)

    # -- preparation -------------------------------------------------------------------
    @property
    def environment(self) -> dict[str, str]:
        if self._environment is None:
            env = package_versions()
            env["device"] = self.caps.name
            env["commit"] = git_commit()
            self._environment = env
        return self._environment

    @property
    def load_report(self) -> LoadReport | None:
        return self.data.load_report

    def resolve(self, variant: Variant) -> ResolvedVariant:
        return self.data.resolve(variant)

    def workload(self, variant: Variant) -> tuple[TextTokenizer, list[EncodedRow], list[EncodedRow] | None]:
        """(tokenizer, rows, A/B-swapped rows or None): kept for `perfsuite compare`'s worker, which
        drives this and older revisions through the same calls."""
        e = self.resolve(variant).encoded
        return e.tokenizer, e.rows, e.swapped

    def checkpoint(self, variant: Variant, pad_id: int) -> Path | None:
        """The checkpoint folder a variant loads (see `workload`)."""
        return self.resolve(variant).checkpoint

    def skip_reason(self, variant: Variant) -> str | None:
        spec = self.matrix.spec(variant.model)
        return (
            skip_reason(variant, self.settings, self.caps, self.probe, spec)
            or self.matrix.excluded(variant)
            or packing_reason(variant, self.settings, self.probe, spec)
        )

    def add_skipped(self, variant: Variant) -> Outcome:
        """Record a variant that was collected but cannot run here, so the report still lists it."""
        outcome = Outcome(variant, self.skip_verdict(variant))
        self.outcomes.append(outcome)
        return outcome

    def add_skipped_pair(self, bound: RelativeBound) -> PairOutcome:
        outcome = PairOutcome(bound, Verdict("skip", reason=self.relative_skip_reason(bound) or ""))
        self.pair_outcomes.append(outcome)
        return outcome

    def report(self, shard: str | None = None) -> RunReport:
        """This run's rows in matrix order, with what was read and the cost model's predictions."""
        order = {v.id: i for i, v in enumerate(self.matrix.variants)}
        preamble = [self.load_report.summary()] if self.load_report is not None else []
        preamble += self.length_summary()
        preamble += [line for spec in self.matrix.models.values() if (line := miniature_summary(spec))]
        return RunReport(
            self.settings.name,
            self.store.machine_key,
            sorted(self.outcomes, key=lambda o: order.get(o.variant.id, 0)),
            list(self.pair_outcomes),
            preamble,
            self.predictions(),
            shard,
            [*self.finish_note, *(self.latency.summary(self.settings.latency_alpha) if self.latency else [])],
            "rebaseline" if self.rebaseline else "run",
            self.settings.portable_quality_dtypes,
        )

    def finish(self, interrupted: bool = False) -> list[str]:
        """End a rebaseline: commit every staged record together, or (interrupted) none of them.
        Returns what happened, for the report's footer; a no-op when not rebaselining."""
        if not self.rebaseline or not self.store.lock.held:
            return self.finish_note
        if interrupted:
            would = self.store.abort()
            for outcome in self.outcomes:  # the table must not say "recorded" for what was not
                if outcome.verdict.status is Status.RECORDED:
                    outcome.verdict = Verdict(Status.SKIP, reason="interrupted before the commit: not recorded")
            self.finish_note = [
                f"interrupted: no baseline changed; this run would have recorded {len(would)} files"
                + "".join(f"\n  {path}" for path in would)
            ]
        else:
            spread_note = self._time_in_fresh_processes() if self.processes else []
            written = self.store.commit()
            recorded = sum(o.verdict.status == "recorded" for o in self.outcomes)
            states = [s.split(" ")[0] for s in self.portable_states.values()]
            confirmed = "rewritten as asked" if self.rewrite_portable else "left as they were"
            self.finish_note = [
                f"recorded {recorded} baselines ({len(written)} files, committed together) under "
                f"{self.store.folder} and {self.store.portable_folder}",
                f"portable records: {states.count('changed')} changed, {states.count('new')} new, "
                f"{states.count('confirmed')} confirmed ({confirmed})",
                *(f"  changed: {v}: {s}" for v, s in self.portable_states.items() if s.startswith("changed")),
                *spread_note,
            ]
        return self.finish_note

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A rebaseline's records: committed together when the block ends, none of them when it
        raises (Ctrl-C included; the exception goes on). A no-op for a run."""
        try:
            yield
        except BaseException:
            self.finish(interrupted=True)
            raise
        self.finish()

    def skip_verdict(self, variant: Variant) -> Verdict:
        return Verdict("skip", reason=self.skip_reason(variant) or "")

    # -- running -----------------------------------------------------------------------
    def run(self, variant: Variant, sampler: Sampler = perf_counter_sampler) -> Outcome:
        if self.skip_reason(variant):
            outcome = Outcome(variant, self.skip_verdict(variant))
            self.outcomes.append(outcome)
            return outcome
        failure = None
        # The previous variant's model (an nf4 one is only freed by the collector: bitsandbytes'
        # parameters point back at their modules) must be gone before this one's peak memory.
        _release_device_memory(self.caps)
        with runner.preserved_process_state():
            try:
                resolved = self.resolve(variant)
                start = time.perf_counter()
                result = self.measure(resolved, sampler=sampler)
                self._timing_cost[variant.id] = time.perf_counter() - start
                outcome = self._judge(variant, self._measurement(resolved, result))
            except Exception as exc:  # one broken variant (OOM, kernel error) must not end the matrix
                failure = f"run failed: {type(exc).__name__}: {exc}"
        if failure is not None:
            # Outside the except: its traceback, which holds the failed model's frames, is gone.
            _release_device_memory(self.caps)
            outcome = Outcome(variant, Verdict("fail", reason=failure))
            self.outcomes.append(outcome)
            return outcome
        outcome.notes = variant_notes(variant, self.caps)
        outcome.notes.extend(reference_notes(outcome.measurement, resolved.spec.softcap_of))
        if result.adapter is not None:
            outcome.notes.append(f"LoRA adapter {result.adapter} (unmerged)")
        if not result.scored:
            how = "`checkpoint` in its [[models]]" if resolved.spec.source else checkpoint_env_var(resolved.spec)
            outcome.notes.append(f"shape-only weights: log-loss needs a real checkpoint (set {how})")
            different = semantic_reason(resolved.spec, variant.attention)
            if different:  # no reference can show it without real weights: say it in words
                outcome.notes.append(f"not this model: {different}")
        outcome.notes.extend(miniature_notes(resolved.spec))
        outcome.notes.extend(real_weights_notes(resolved.spec, resolved.checkpoint))
        self.outcomes.append(outcome)
        return outcome

    def decide_latency(self) -> RunDecisions | None:
        """Decide every pending latency together, once the run's variants are timed
        (judge/latency.py): the run's phase from their first timings, then fresh processes for
        the variants noise left undecided, within latency_budget_s. None: nothing was pending."""
        pending = [o for o in self.outcomes if o.measurement is not None and o.verdict.latency_pending]
        if not pending:
            return None
        records = {o.variant.id: self.stored(o.variant).machine for o in pending}
        candidates = latency_candidates(
            [(o.variant, o.measurement) for o in pending], records, self.settings, self._timing_cost
        )
        more = fresh_timings(lambda ids: self.measure_fresh(self.fresh, ids), records)
        self.latency = decide_run(candidates, Budget(self.settings.latency_budget_s), more)
        for o in pending:
            checks, coverage = latency_coverage(self.latency.decisions[o.variant.id])
            o.verdict = o.verdict.with_latency(checks[0] if checks else None, coverage, self.strict)
        return self.latency

    def _time_in_fresh_processes(self) -> list[str]:
        """Each recorded variant timed in `processes` fresh processes; the staged machine records
        keep their medians. If a fresh process fails, the records keep this run's timing alone."""
        ids = [o.variant.id for o in self.outcomes if o.verdict.status == "recorded"]
        if not ids:
            return []
        say = lambda text: print(f"[perfsuite] {text}", file=sys.stderr, flush=True)  # noqa: E731
        try:
            medians = process_medians(self.fresh, ids, self.processes, self.measure_fresh, say)
        except FreshError as exc:
            return [f"latency records hold this run's timing alone (no fresh processes): {exc}"]
        return [spread_note(self.store.with_processes(medians), self.processes)]

    def provenance(self, resolved: ResolvedVariant) -> dict[str, str]:
        """What produced a measurement besides the libraries (environment.PROVENANCE)."""
        s = self.settings
        return {
            "checkpoint": weights_identity(resolved.checkpoint) if resolved.checkpoint else "shape-only",
            "adapter": weights_identity(resolved.adapter) if resolved.adapter else "none",
            "threads": str(s.threads),
            "nf4_compute_dtype": s.nf4_compute_dtype,
            "reference_dtype": s.reference_dtype,
        }

    def _measurement(self, resolved: ResolvedVariant, result: RunResult) -> Measurement:
        """The run's measurement, with the comparison to the in-run quality reference."""
        environment = {**self.environment, **self.provenance(resolved)}
        measurement = Measurement.from_run(result, self.data.settings_record(resolved), environment)
        if result.scored:
            try:
                reference = self.reference_probs(resolved.variant.model)
            except Exception as exc:  # e.g. an fp32 reference that does not fit the card: say so, go on
                _release_device_memory(self.caps)
                return measurement.with_reference(error=f"{type(exc).__name__}: {exc}")
            labels = result.labels if all(y is not None for y in result.labels) else None
            reference_lm = self._reference_lm.get(resolved.spec.softcap_of or resolved.variant.model)
            compared = compare_to_reference(result.probs, reference, labels, result.lm_log_loss, reference_lm)
            measurement = measurement.with_reference(compared)
        return measurement

    def measure(
        self,
        resolved: ResolvedVariant,
        rows: list[EncodedRow] | None = None,
        swapped: list[EncodedRow] | None = None,
        sampler: Sampler = perf_counter_sampler,
    ) -> RunResult:
        """Run the variant's rows (or `rows`, a shard of them) with its checkpoint and adapter."""
        if rows is None:
            rows, swapped = resolved.encoded.rows, resolved.encoded.swapped
        return runner.run_variant(
            resolved.variant,
            self.settings,
            rows,
            resolved.pad_id,
            resolved.checkpoint,
            sampler,
            swapped,
            resolved.adapter,
            resolved.spec,
            resolved.lm_ids,
        )

    def prepare(self, variant: Variant, settings: TierSettings | None = None) -> PreparedVariant:
        """The variant's whole workload, loaded and batched (under `settings`, default the tier's)."""
        r = self.resolve(variant)
        e = r.encoded
        return runner.prepare_variant(
            variant, settings or self.settings, e.rows, r.pad_id, r.checkpoint, e.swapped, r.adapter, r.spec
        )

    def length_summary(self) -> list[str]:
        return self.data.length_summary()

    def reference_probs(self, model: str):
        """The in-run quality reference for a model (the tier's reference_dtype, eager, one row per
        batch, no padding; a -nocap model's is the capped one's), once per session (MLPerf's idea):
        every variant is compared with it row by row, so no effect needs a baseline."""
        model = self.matrix.spec(model).softcap_of or model  # softcapping off: judged against the capped model
        if model not in self._references:
            ref = Variant(model, self.settings.reference_dtype, "eager", "dynamic", self.settings.name)
            prepared = self.prepare(ref, replace(self.settings, batch_size=1))
            probs, bad = runner.score_once(prepared, len(self.resolve(ref).encoded.rows))
            if bad:
                raise ValueError(f"{model}: the {ref.dtype} eager reference itself has {bad} non-finite rows")
            self._references[model] = probs
            lm = prepared.lm_log_loss(self.resolve(ref).lm_ids)
            if lm is not None:
                self._reference_lm[model] = lm
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
                notes, predicted, source = [], None, ""
                if bound.predict_within is not None:
                    predicted, source = self.predictor.ratio(bound.variant, bound.reference)
                    if predicted is None:
                        notes.append(source)
                verdict = judge_pair(PairEvidence(bound, estimate, predicted, source))
                checks = verdict.checks
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

    def predictions(self) -> dict[str, float]:
        """Predicted pass time of every variant measured so far (empty without a fit)."""
        return self.predictor.seconds_of([o.variant for o in self.outcomes if o.measurement is not None])

    def stored(self, variant: Variant) -> StoredRecords:
        """The variant's portable record and this machine's, or the error that makes one unusable."""
        paths = (str(self.store.portable_path(variant.id)), str(self.store.path_for(variant.id)))
        try:
            portable, machine = self.store.load_portable(variant.id), self.store.load_machine(variant.id)
        except BaselineError as exc:
            return StoredRecords(None, None, *paths, self.store.machine_key, exc)
        return StoredRecords(portable, machine, *paths, self.store.machine_key)

    def _judge(self, variant: Variant, measurement: Measurement) -> Outcome:
        stored = self.stored(variant)
        if self.rebaseline:
            guard = judge(measurement, replace(stored, portable=None, machine=None, error=None), variant.bounds)
            if guard.failed:  # never store a baseline of a broken run
                return Outcome(variant, guard, measurement, stored.machine)
            portable, machine = records_for(variant, measurement, self.settings, self.store.machine_key)
            state = portable_state(stored, portable)
            self.portable_states[variant.id] = state
            keep = state == "confirmed" and not self.rewrite_portable
            self.store.stage(None if keep else portable, machine)  # written together by finish(), or not at all
            # what a recording judges: the baseline-free kinds (the rest is being written, not read)
            judged = [c for c in guard.coverage if c.kind in BASELINE_FREE]
            recorded = Verdict("recorded", guard.checks, baseline_path=stored.machine_path, coverage=judged)
            outcome = Outcome(variant, recorded, measurement, stored.machine)
            outcome.notes.append(f"portable record {state}" + (" (left as it was)" if keep else ""))
            return outcome
        verdict = judge(
            measurement, stored, variant.bounds, self.settings, self.strict, self.matrix.spec(variant.model)
        )
        return Outcome(variant, verdict, measurement)
